"""The hypervisor: ports (82599 + PF driver), VMs with guest memory, and VF assignment.

``Host.assign`` does what VFIO does for a VF given to a VM: every page of the VM's
memory is mapped into the VF's IOMMU domain at IOVA = guest-physical address, the
VF's MSI-X vectors are routed to the VM (which injects them into the guest driver),
and the guest's VF driver (`VfNic`) binds by device id.

``Host.run_traffic`` offers frames to a port at their arrival times; the simulation engine
(`sriov.hw.clock.SimClock.run_frames`) runs them with every interrupt, injection and NAPI poll
in between, in one call.
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
#: how far past the clock `run_traffic` takes a first timestamp without ``start_ns`` (1 hour)
TRAFFIC_HORIZON_NS = 3_600 * 10**9


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
        # "<nic>-<vector>" -> (the VF's vector, its injections before it was routed here)
        self._routes: dict[str, tuple[Any, int]] = {}
        self._unrouted: dict[str, int] = {}  # injections counted before a route was taken away

    @property
    def injected(self) -> dict[str, int]:
        """Interrupts the hypervisor injected into this VM, per ``"<nic>-<vector>"`` (a snapshot)."""
        out = dict(self._unrouted)
        for key, (m, base) in self._routes.items():
            out[key] = out.get(key, 0) + m.injected - base
        return {key: n for key, n in out.items() if n}

    def _route(self, key: str, vector: Any) -> None:
        self._routes[key] = (vector, vector.injected)

    def _unroute(self, key: str) -> None:
        m, base = self._routes.pop(key)
        self._unrouted[key] = self._unrouted.get(key, 0) + m.injected - base

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
            vm._route(f"{nic.name}-{vector}", vf_function.msix.vectors[vector])
            vf_function.set_msix_guest(vector, nic)
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
                fn.set_msix_guest(vector, None)
                vm._unroute(f"{nic.name}-{vector}")
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
        trace: bool = True,
    ) -> RxResult:
        """Offer ``batch`` to ``port``'s wire at its arrival times, on the simulation clock.

        Each frame reaches the device at its timestamp: clock events due before it run first,
        events due at the same instant after it (the order `sriov.timeline` uses). Its receive
        completions raise their interrupt causes at its arrival; moderation, MSI-X delivery,
        injection and the guests' NAPI polls run in between, all in the simulation engine
        (`SimClock.run_frames`). Each frame the guests take carries its arrival time.

        ``start_ns``: shift the batch's times so its first frame arrives then (None: the
        timestamps are simulation times; they must not lie in the past, nor more than
        `TRAFFIC_HORIZON_NS` ahead of the clock: a capture's epoch times need ``start_ns``).
        ``trace``: record in each assigned VF driver's `RxTrace` (``nic.napi.trace``) the arrival
        and hand-off time of every frame and every interrupt, for latency figures. Returns the
        verdicts of the whole batch (`RxResult`); the clock is left at the last arrival. A driver
        that advances the clock inside an event (a busy-wait) makes the frames it jumped over
        arrive late, at the clock: counted in ``late_frames``.
        """
        from sriov.drivers.napi import RxTrace
        from sriov.wire import RxResult

        if not isinstance(port, Port) or self.ports.get(port.name) is not port:
            raise ConfigError(f"{port!r} is not a port of this host (use host.add_port)")
        if not isinstance(batch, Batch):
            raise ConfigError(f"run_traffic() takes a sriov.Batch, got {type(batch).__name__}")
        n = len(batch)
        clock = self.clock
        ts = np.ascontiguousarray(batch.timestamps_ns, dtype=np.int64)
        if n and np.any(np.diff(ts) < 0):
            raise ConfigError("run_traffic needs frames in arrival order (timestamps_ns non-decreasing)")
        if start_ns is not None:
            if not isinstance(start_ns, int) or isinstance(start_ns, bool) or start_ns < clock.now:
                raise ConfigError(f"start_ns must be an int >= the clock ({clock.now} ns), got {start_ns!r}")
            if n:
                ts = ts + (start_ns - int(ts[0]))
        if n and int(ts[0]) < clock.now:
            raise ConfigError(
                f"the first frame arrives at {int(ts[0])} ns, before the clock ({clock.now} ns): "
                "pass start_ns=host.clock.now (or later) to shift the batch"
            )
        if n and start_ns is None and int(ts[0]) - clock.now > TRAFFIC_HORIZON_NS:
            raise ConfigError(
                f"the first frame arrives at {int(ts[0])} ns, more than {TRAFFIC_HORIZON_NS // 10**9} s of "
                f"simulated time after the clock ({clock.now} ns; a capture's epoch times?): pass "
                "start_ns=host.clock.now to shift the batch"
            )
        if trace:
            for nic, _vm, p in self._nics.values():
                if p is port and nic.napi.trace is None:
                    nic.napi.trace = RxTrace()
        selected = np.zeros(n, np.uint64)
        delivered = np.zeros(n, np.uint64)
        reasons = np.zeros(n, np.uint8)
        device = port.device
        functions = [device.pf, *device.vfs]
        min_latency = min(fn.irq_latency_ns for fn in functions)
        queue_frames = np.zeros(R.MAX_QUEUES, np.int64)
        wire = port.wire
        wire._enter()  # the port's datapath lock, as for any receive (a guest's transmit re-enters)
        try:
            _accepted, late = clock.run_frames(
                wire._kernel, device.router, batch.data, batch.offsets, batch.lengths, ts,
                selected, delivered, reasons, queue_frames, min_latency,
            )  # fmt: skip
        finally:
            wire._leave()
        self.late_frames += late
        if n:
            clock.run_until(int(ts[-1]))
        return RxResult(selected, delivered, reasons, queue_frames)
