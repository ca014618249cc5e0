"""sriov: a software model of an SR-IOV NIC (Intel 82599 / ixgbe), register- and mailbox-faithful."""

from sriov.drivers.pf import PfDriver
from sriov.drivers.vf import VfNic
from sriov.errors import (
    CaptureError,
    ConfigError,
    DmaFault,
    DriverStateError,
    MailboxError,
    RegisterAccessError,
    SriovError,
)
from sriov.host import Host, Port, Vm
from sriov.hw.clock import SimClock
from sriov.hw.device import Device82599, PciFunction, PfFunction, VfFunction
from sriov.hw.iommu import Iommu

__version__ = "0.1.0"

__all__ = [
    "CaptureError",
    "ConfigError",
    "Device82599",
    "DmaFault",
    "DriverStateError",
    "Host",
    "Iommu",
    "MailboxError",
    "PciFunction",
    "PfDriver",
    "PfFunction",
    "Port",
    "RegisterAccessError",
    "SimClock",
    "SriovError",
    "VfFunction",
    "VfNic",
    "Vm",
]
