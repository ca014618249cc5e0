"""The hypervisor: ports (82599 + PF driver), VMs with guest memory, and VF assignment.

``Host.assign`` does what VFIO does for a VF given to a VM: every page of the VM's
memory is mapped into the VF's IOMMU domain at IOVA = guest-physical address, the
VF's MSI-X vectors are routed to the VM (which injects them into the guest driver),
and the guest's VF driver (`VfNic`) binds by device id.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

import numpy as np

from sriov.batch import Batch
from sriov.drivers.pf import PfDriver
from sriov.drivers.vf import VfNic
from sriov.errors import ConfigError, DriverStateError
from sriov.hw import regs as R
from sriov.hw.clock import SimClock
from sriov.hw.device import Device82599, VfFunction
from sriov.hw.iommu import Iommu
from sriov.kernels import impl as _kernels
from sriov.memory import GuestMemory

if TYPE_CHECKING:
    from sriov.wire import RxResult, Wire

DEFAULT_HOST_MEMORY = 64 << 20
#: MSI-X message of a VF -> the guest's handler running, by how the hypervisor delivers it.
#: Model choices, not measurements: with posted interrupts (VT-d PI + APICv) the IOMMU posts
#: the vector into the VM's descriptor and a running vCPU takes it without a VM exit (~1 us
#: end to end); without them the host takes the interrupt, the hypervisor injects it and the
#: vCPU sees it at its next VM entry (an exit/entry round trip plus host interrupt handling,
#: ~5 us).
INJECTION_PRESETS: dict[str, int] = {"posted": 1_000, "vm-exit": 5_000}
INTEL_OUI = b"\x00\x1b\x21"
VF_DRIVERS: dict[int, type[VfNic]] = {R.DEV_ID_82599_VF: VfNic}  # device id -> driver (probe match)


Inject = _kernels.Inject  # a VF vector's route into its VM (module-level: tests swap twins)


def injection_latency(value: int | str) -> int:
    """Nanoseconds for an injection latency given as ns or as a name in `INJECTION_PRESETS`."""
    if isinstance(value, str):
        if value not in INJECTION_PRESETS:
            raise ConfigError(
                f"injection latency preset must be one of {sorted(INJECTION_PRESETS)}, got {value!r}"
            )
        return INJECTION_PRESETS[value]
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(
            f"injection latency must be a non-negative int (ns) or a preset name, got {value!r}"
        )
    return value


class Vm:
    """A virtual machine: guest memory and the interrupts injected into it."""

    def __init__(self, host: Host, name: str, memory: int, injection_latency_ns: int) -> None:
        self.host = host
        self.name = name
        self.memory = GuestMemory(memory, name)
        self.injection_latency_ns = injection_latency_ns  # VF MSI-X -> this guest's handler
        self.nics: list[VfNic] = []
        self.injected: dict[str, int] = {}

    def _inject(self, nic: VfNic, vector: int) -> None:
        """A VF MSI-X message arrived: the hypervisor injects it into the guest's handler."""
        self._inject_as(f"{nic.name}-{vector}", nic, vector)

    def _inject_as(self, key: str, nic: VfNic, vector: int) -> None:
        """`_inject` with the ``injected`` key made once (what `Inject`, the handler
        `Host.assign` routes each VF vector to, does in one compiled call)."""
        injected = self.injected
        injected[key] = injected.get(key, 0) + 1
        nic._msix(vector)

    def __repr__(self) -> str:
        return f"<Vm {self.name} {self.memory.size >> 20} MiB, {len(self.nics)} VFs>"


class Port:
    """One 82599 port: the device, its PF driver (loaded and up) and the wire."""

    def __init__(self, host: Host, name: str, index: int, mac: bytes) -> None:
        self.host = host
        self.name = name
        self.device = Device82599(
            name, host.clock, host.iommu, pf_rid=(index + 1) << 8, irq_latency_ns=host.irq_latency_ns
        )
        # The PF's own DMA reaches host memory (identity-mapped, as the host kernel's DMA API).
        self.device.pf.domain.map(0, host.memory.buffer, 0, host.memory.size, writable=True)
        self.pf = PfDriver(self.device, mac, seed=host.seed * 1000 + index, memory=host.memory)
        self.pf.load()
        self._wire: Wire | None = None

    def vf(self, i: int) -> VfFunction:
        """VF function ``i`` (SR-IOV must be enabled with more than ``i`` VFs)."""
        return self.device.vf(i)

    @property
    def wire(self) -> Wire:
        """The port's wire (`sriov.wire.Wire`), created on first use."""
        if self._wire is None:
            if importlib.util.find_spec("sriov.wire") is None:
                raise DriverStateError(
                    f"{self.name}: the datapath (sriov.wire) is not available in this build"
                )
            from sriov.wire import Wire

            self._wire = Wire(self.device)
        return self._wire

    def stats(self) -> dict[str, int]:
        """Port counters (ethtool -S names) plus the PF's mailbox counters."""
        from sriov.hw import counters as C

        out = {
            name: int(v) for name, v in zip(C.PORT_COUNTERS, self.device.state.port_counters, strict=False)
        }
        out.update(self.pf.stats())
        return out

    def __repr__(self) -> str:
        return f"<Port {self.name} {self.pf.num_vfs} VFs>"


class Host:
    """The hypervisor host: simulation clock, IOMMU, host memory, ports and VMs."""

    def __init__(
        self,
        seed: int = 0,
        irq_latency_ns: int = 1000,
        memory: int = DEFAULT_HOST_MEMORY,
        injection_latency_ns: int | str = "posted",
    ) -> None:
        """``irq_latency_ns``: MSI-X -> handler on the host (the PF driver's interrupts).
        ``injection_latency_ns``: a VF's MSI-X -> the guest's handler, for every VM that does not
        set its own: ns, or a name from `INJECTION_PRESETS` ("posted", "vm-exit")."""
        if not isinstance(seed, int) or seed < 0:
            raise ConfigError(f"seed must be a non-negative int, got {seed!r}")
        if not isinstance(irq_latency_ns, int) or irq_latency_ns < 0:
            raise ConfigError(f"irq_latency_ns must be a non-negative int, got {irq_latency_ns!r}")
        self.injection_latency_ns = injection_latency(injection_latency_ns)
        self.seed = seed
        self.irq_latency_ns = irq_latency_ns
        self.clock = SimClock()
        self.iommu = Iommu()
        self.memory = GuestMemory(memory, "host")
        self.ports: dict[str, Port] = {}
        self.vms: dict[str, Vm] = {}
        self._rng = np.random.default_rng([seed, 0x5EED])
        self._nics: dict[VfFunction, tuple[VfNic, Vm, Port]] = {}
        # Frames `run_traffic` offered after their arrival time: a driver busy-waited inside a
        # clock event (the VF's link check advances the clock by 500 us) and time jumped past them.
        self.late_frames = 0

    # -- ports --------------------------------------------------------------------------------
    def add_port(self, name: str, mac: str | bytes | None = None) -> Port:
        """A new 82599 port; its PF driver loads and brings it up."""
        from sriov.drivers.mailbox import is_valid_ether_addr, parse_mac

        if not isinstance(name, str) or not name:
            raise ConfigError(f"port name must be a non-empty string, got {name!r}")
        if name in self.ports:
            raise ConfigError(f"port {name!r} already exists")
        if mac is None:
            addr = INTEL_OUI + bytes(int(b) for b in self._rng.integers(0, 256, 3))
        else:
            addr = parse_mac(mac)
            if not is_valid_ether_addr(addr):
                raise ConfigError(f"port MAC must be a unicast, non-zero address, got {mac!r}")
        port = Port(self, name, len(self.ports), addr)
        self.ports[name] = port
        _ = port.wire  # the wire exists from the start, so TX tail writes reach the transmit engine
        return port

    def connect(self, port_a: Port, port_b: Port) -> None:
        """Cable two ports back to back: what leaves one port's wire is received by the other."""
        for port in (port_a, port_b):
            if not isinstance(port, Port) or self.ports.get(port.name) is not port:
                raise ConfigError(f"{port!r} is not a port of this host (use host.add_port)")
        if port_a is port_b:
            raise ConfigError(f"cannot cable {port_a.name} to itself")
        port_a.wire.connect(port_b.wire)

    def remove_port(self, name: str) -> None:
        """Unload the PF driver and remove the port (refused while its VFs are assigned)."""
        port = self.ports.get(name)
        if port is None:
            raise ConfigError(f"no port {name!r} (ports: {', '.join(self.ports) or 'none'})")
        port.pf.unload()
        del self.ports[name]

    # -- VMs ----------------------------------------------------------------------------------
    def add_vm(self, name: str, memory: int = 64 << 20, injection_latency_ns: int | str | None = None) -> Vm:
        """A VM with ``memory`` bytes of guest RAM (one preallocated numpy buffer).

        ``injection_latency_ns``: how long a VF's MSI-X takes to reach this guest's handler (ns,
        or "posted" / "vm-exit"); the host's setting when None.
        """
        if not isinstance(name, str) or not name:
            raise ConfigError(f"VM name must be a non-empty string, got {name!r}")
        if name in self.vms:
            raise ConfigError(f"VM {name!r} already exists")
        latency = (
            self.injection_latency_ns
            if injection_latency_ns is None
            else injection_latency(injection_latency_ns)
        )
        vm = Vm(self, name, memory, latency)
        self.vms[name] = vm
        return vm

    # -- assignment ---------------------------------------------------------------------------
    def _port_of(self, fn: object) -> Port:
        for port in self.ports.values():
            if isinstance(fn, VfFunction) and fn.device is port.device:
                if fn not in port.device.vfs:
                    raise ConfigError(f"{fn.name} is not enabled (SR-IOV has {port.device.num_vfs} VFs)")
                return port
        raise ConfigError(f"{fn!r} is not a VF of a port on this host (use port.vf(i))")

    def assign(self, vf_function: VfFunction, vm: Vm) -> VfNic:
        """Give a VF to a VM (VFIO): map guest memory, route MSI-X, bind the VF driver."""
        port = self._port_of(vf_function)
        if not isinstance(vm, Vm) or self.vms.get(vm.name) is not vm:
            raise ConfigError(f"{vm!r} is not a VM of this host (use host.add_vm)")
        if vf_function in self._nics:
            owner = self._nics[vf_function][1]
            raise DriverStateError(
                f"{vf_function.name} is already assigned to {owner.name}; unassign it first"
            )
        driver = VF_DRIVERS.get(vf_function.device_id)
        if driver is None:
            raise ConfigError(f"no VF driver matches device id {vf_function.device_id:#06x}")
        vf_function.domain.map(0, vm.memory.buffer, 0, vm.memory.size, writable=True)
        port.pf._mark_assigned(vf_function.index, True)
        seed = int(self._rng.integers(0, 2**63))
        nic = driver(vf_function, vm.memory, self.clock, seed=seed, name=f"{vm.name}/eth{len(vm.nics)}")
        for vector in range(nic.NUM_VECTORS):
            vf_function.set_msix_handler(vector, Inject(vm.injected, f"{nic.name}-{vector}", nic))
        # The VF's messages now go through the hypervisor's injection path to this guest.
        vf_function.irq_latency_ns = vm.injection_latency_ns
        vm.nics.append(nic)
        self._nics[vf_function] = (nic, vm, port)
        nic.probe()
        return nic

    def unassign(self, nic: VfNic) -> None:
        """Unbind the VF driver, unroute its vectors, unmap guest memory, return the VF to the host.

        Waits for the port's datapath (a receive or transmit batch running in another thread) to
        finish first; once this returns, the device does no more DMA into the VM.
        """
        fn = getattr(nic, "function", None)
        if fn not in self._nics or self._nics[fn][0] is not nic:
            raise ConfigError(f"{nic!r} is not assigned on this host")
        _, vm, port = self._nics[fn]
        # VFIO resets the function before it unmaps: with the port's datapath lock held, no
        # batch is in flight while the VF goes, and none starts before the VM's pages are gone
        with port.device.dma_lock:
            del self._nics[fn]
            nic.remove()
            for vector in range(nic.NUM_VECTORS):
                fn.set_msix_handler(vector, None)
            fn.irq_latency_ns = port.device.irq_latency_ns
            fn.domain.unmap(0, vm.memory.size)
            vm.nics.remove(nic)
            port.pf._mark_assigned(fn.index, False)

    def nics(self) -> list[Any]:
        """Every bound VF driver."""
        return [entry[0] for entry in self._nics.values()]

    # -- traffic on the simulation clock --------------------------------------------------------
    def run_traffic(
        self,
        port: Port,
        batch: Batch,
        start_ns: int | None = None,
        chunk_ns: int = 0,
        max_chunk: int = 4096,
        trace: bool = True,
    ) -> RxResult:
        """Offer ``batch`` to ``port``'s wire at its arrival times, interleaved with the clock.

        Each frame reaches the device at its timestamp: clock events due before it run first,
        events due at the same instant after it (the order `sriov.timeline` uses). Frames go to
        the wire together only while nothing could tell them apart: no clock event falls between
        them and no assigned VF's queue vector could fire on a new cause (masked, cause already
        pending, or still inside its EITR interval); otherwise one at a time. The PF's own
        vectors are not watched (its pool's causes may be raised early, by less than the gap to
        the next clock event).

        ``chunk_ns`` > 0 trades exactness for speed, as a traffic generator feeding bursts does:
        the frames of each ``chunk_ns`` of wire time reach the device together at the first
        one's time, up to ``chunk_ns`` early (a poll may take them, a cause fires sooner); the
        clock events due inside a chunk run after it.

        ``start_ns``: shift the batch's times so its first frame arrives then (None: the
        timestamps are simulation times and must not lie in the past). ``trace``: record in each
        assigned VF driver's `RxTrace` (``nic.napi.trace``) the arrival time of every frame its
        ring gets, for latency figures. Returns the verdicts of the whole batch (`RxResult`);
        the clock is left at the last arrival. A driver that advances the clock inside an event
        (a busy-wait) makes the frames it jumped over arrive late, at the clock: counted in
        ``late_frames``.
        """
        from sriov.drivers.napi import RxTrace
        from sriov.hw import counters as C
        from sriov.wire import RxResult

        if not isinstance(port, Port) or self.ports.get(port.name) is not port:
            raise ConfigError(f"{port!r} is not a port of this host (use host.add_port)")
        if not isinstance(batch, Batch):
            raise ConfigError(f"run_traffic() takes a sriov.Batch, got {type(batch).__name__}")
        for name, value, low in (("chunk_ns", chunk_ns, 0), ("max_chunk", max_chunk, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ConfigError(f"{name} must be an int >= {low}, got {value!r}")
        n = len(batch)
        clock = self.clock
        ts = np.asarray(batch.timestamps_ns, dtype=np.int64)
        if n and np.any(np.diff(ts) < 0):
            raise ConfigError("run_traffic needs frames in arrival order (timestamps_ns non-decreasing)")
        if n and start_ns is not None:
            if not isinstance(start_ns, int) or start_ns < clock.now:
                raise ConfigError(f"start_ns must be an int >= the clock ({clock.now} ns), got {start_ns!r}")
            ts = ts + (start_ns - int(ts[0]))
            batch = Batch(batch.data, batch.offsets, batch.lengths, ts, validate=False)
        if n and int(ts[0]) < clock.now:
            raise ConfigError(
                f"the first frame arrives at {int(ts[0])} ns, before the clock ({clock.now} ns): "
                "pass start_ns=host.clock.now (or later) to shift the batch"
            )
        selected = np.zeros(n, np.uint64)
        delivered = np.zeros(n, np.uint64)
        reasons = np.zeros(n, np.uint8)
        queue_frames = np.zeros(R.MAX_QUEUES, np.int64)
        watched = []  # queue vectors of the VF drivers on this port
        traced = []  # (trace, pool)
        counters = port.device.state.pool_counters
        col = C.POOL["rx_packets"]
        for fn, (nic, _vm, p) in self._nics.items():
            if p is not port:
                continue
            mbx = fn.msix.mailbox_vector()
            watched += [m for v, m in enumerate(fn.msix.vectors) if v != mbx]
            if trace:
                if nic.napi.trace is None:
                    nic.napi.trace = RxTrace()
                tr = nic.napi.trace
                if tr.accounted is None:  # frames already in the ring: their arrival is unknown
                    tr.arrived_unknown(nic.rx_ring.pending() if nic.rx_ring is not None else 0)
                    tr.accounted = int(counters[fn.index, col])
                traced.append((tr, fn.index))
        far = 1 << 62
        i = 0
        while i < n:
            t = int(ts[i])
            clock.run_before(t)
            if chunk_ns:
                limit = t + chunk_ns - 1
            else:
                nxt = clock.next_event_time()
                limit = far if nxt is None else nxt  # arrivals at an event's instant come before it
                for m in watched:
                    if m.masked or m.pending:
                        continue  # a new cause cannot fire it before some clock event
                    due = m.last_fire + m.interval_ns
                    limit = min(limit, due - 1 if due > t else t - 1)
            j = int(np.searchsorted(ts, limit, side="right"))
            j = min(max(j, i + 1), i + max_chunk, n)
            if clock.now > t:  # a nested advance moved time past these arrivals: they come late
                self.late_frames += int(np.searchsorted(ts[i:j], clock.now, side="left"))
            before = [int(counters[p, col]) for _, p in traced]
            res = port.wire.receive(batch[i:j])
            selected[i:j] = res.selected
            delivered[i:j] = res.delivered
            reasons[i:j] = res.reasons
            queue_frames += res.queue_frames
            for (tr, p), c0 in zip(traced, before, strict=True):
                if c0 > tr.accounted:
                    tr.arrived_unknown(c0 - tr.accounted)
                written = int(counters[p, col]) - c0
                if written == j - i:  # every frame of the chunk reached this pool (one-VF traffic)
                    tr.arrived(ts[i:j])
                elif written:
                    tr.arrived(ts[i:j][(res.delivered >> np.uint64(p)) & np.uint64(1) != 0])
                tr.accounted = c0 + written
            i = j
        if n:
            clock.run_until(int(ts[-1]))
        return RxResult(selected, delivered, reasons, queue_frames)
