"""Traffic in and out of the model: capture files (pcap, pcapng), synthetic traffic, scapy interop.

- :func:`read_pcap` reads pcap or pcapng into a :class:`Capture` (a Batch), zero copy;
  :func:`write_pcap` / :func:`write_pcapng` write a Batch (pcapng with per-frame comments).
- :class:`TrafficProfile` + :func:`generate` (or :class:`TrafficGenerator`) synthesise frames;
  :func:`from_scenario` takes a scenario file's ``[traffic.generator]`` table.
- ``sriov.traffic.scapy_interop`` (the ``scapy`` extra): ``Batch.from_scapy`` / ``Batch.to_scapy``.
"""

from sriov.traffic.capture import Capture, read_pcap, write_pcap, write_pcapng
from sriov.traffic.synth import TrafficGenerator, TrafficProfile, from_scenario, generate

__all__ = [
    "Capture",
    "TrafficGenerator",
    "TrafficProfile",
    "from_scenario",
    "generate",
    "read_pcap",
    "write_pcap",
    "write_pcapng",
]
