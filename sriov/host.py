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

from sriov.drivers.pf import PfDriver
from sriov.drivers.vf import VfNic
from sriov.errors import ConfigError, DriverStateError
from sriov.hw import regs as R
from sriov.hw.clock import SimClock
from sriov.hw.device import Device82599, VfFunction
from sriov.hw.iommu import Iommu
from sriov.memory import GuestMemory

if TYPE_CHECKING:
    from sriov.wire import Wire

DEFAULT_HOST_MEMORY = 64 << 20
INTEL_OUI = b"\x00\x1b\x21"
VF_DRIVERS: dict[int, type[VfNic]] = {R.DEV_ID_82599_VF: VfNic}  # device id -> driver (probe match)


class Vm:
    """A virtual machine: guest memory and the interrupts injected into it."""

    def __init__(self, host: Host, name: str, memory: int) -> None:
        self.host = host
        self.name = name
        self.memory = GuestMemory(memory, name)
        self.nics: list[VfNic] = []
        self.injected: dict[str, int] = {}

    def _inject(self, nic: VfNic, vector: int) -> None:
        """A VF MSI-X message arrived: the hypervisor injects it into the guest's handler."""
        key = f"{nic.name}-{vector}"
        self.injected[key] = self.injected.get(key, 0) + 1
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

    def __init__(self, seed: int = 0, irq_latency_ns: int = 1000, memory: int = DEFAULT_HOST_MEMORY) -> None:
        if not isinstance(seed, int) or seed < 0:
            raise ConfigError(f"seed must be a non-negative int, got {seed!r}")
        if not isinstance(irq_latency_ns, int) or irq_latency_ns < 0:
            raise ConfigError(f"irq_latency_ns must be a non-negative int, got {irq_latency_ns!r}")
        self.seed = seed
        self.irq_latency_ns = irq_latency_ns
        self.clock = SimClock()
        self.iommu = Iommu()
        self.memory = GuestMemory(memory, "host")
        self.ports: dict[str, Port] = {}
        self.vms: dict[str, Vm] = {}
        self._rng = np.random.default_rng([seed, 0x5EED])
        self._nics: dict[VfFunction, tuple[VfNic, Vm, Port]] = {}

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
        return port

    def remove_port(self, name: str) -> None:
        """Unload the PF driver and remove the port (refused while its VFs are assigned)."""
        port = self.ports.get(name)
        if port is None:
            raise ConfigError(f"no port {name!r} (ports: {', '.join(self.ports) or 'none'})")
        port.pf.unload()
        del self.ports[name]

    # -- VMs ----------------------------------------------------------------------------------
    def add_vm(self, name: str, memory: int = 64 << 20) -> Vm:
        """A VM with ``memory`` bytes of guest RAM (one preallocated numpy buffer)."""
        if not isinstance(name, str) or not name:
            raise ConfigError(f"VM name must be a non-empty string, got {name!r}")
        if name in self.vms:
            raise ConfigError(f"VM {name!r} already exists")
        vm = Vm(self, name, memory)
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
            vf_function.set_msix_handler(vector, lambda v, nic=nic, vm=vm: vm._inject(nic, v))
        vm.nics.append(nic)
        self._nics[vf_function] = (nic, vm, port)
        nic.probe()
        return nic

    def unassign(self, nic: VfNic) -> None:
        """Unbind the VF driver, unroute its vectors, unmap guest memory, return the VF to the host."""
        fn = getattr(nic, "function", None)
        if fn not in self._nics or self._nics[fn][0] is not nic:
            raise ConfigError(f"{nic!r} is not assigned on this host")
        _, vm, port = self._nics.pop(fn)
        nic.remove()
        for vector in range(nic.NUM_VECTORS):
            fn.set_msix_handler(vector, None)
        fn.domain.unmap(0, vm.memory.size)
        vm.nics.remove(nic)
        port.pf._mark_assigned(fn.index, False)

    def nics(self) -> list[Any]:
        """Every bound VF driver."""
        return [entry[0] for entry in self._nics.values()]
