"""Traffic in and out of the model: capture files (pcap, pcapng), synthetic traffic, scapy interop."""

from sriov.traffic.capture import Capture, read_pcap, write_pcap, write_pcapng

__all__ = ["Capture", "read_pcap", "write_pcap", "write_pcapng"]
