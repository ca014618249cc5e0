"""sriov: a software model of an SR-IOV NIC (Intel 82599 / ixgbe), register- and mailbox-faithful."""

import logging

from sriov.batch import Batch
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
from sriov.sweep import sweep
from sriov.traffic.capture import Capture, read_pcap, write_pcap, write_pcapng
from sriov.traffic.synth import TrafficProfile, generate
from sriov.wire import DropReason, RxResult, Wire

__version__ = "0.1.0"

# A library's log lines (the drivers' kernel log, `sriov.drivers`) reach only the handlers the
# application configures (the CLI does, with -v/-q); unconfigured, they are not printed.
logging.getLogger("sriov").addHandler(logging.NullHandler())

__all__ = [
    "Batch",
    "Capture",
    "CaptureError",
    "ConfigError",
    "Device82599",
    "DmaFault",
    "DriverStateError",
    "DropReason",
    "Host",
    "Iommu",
    "MailboxError",
    "PciFunction",
    "PfDriver",
    "PfFunction",
    "Port",
    "RegisterAccessError",
    "RxResult",
    "SimClock",
    "SriovError",
    "TrafficProfile",
    "VfFunction",
    "VfNic",
    "Vm",
    "Wire",
    "generate",
    "read_pcap",
    "sweep",
    "write_pcap",
    "write_pcapng",
]
