"""Counter layouts: names (ethtool -S style) and their slots in the device's counter arrays.

The kernels write these numpy arrays directly by slot index; Python reads them by
name. Append new names at the end of a list (slots are positional).
"""

from __future__ import annotations

# Per port. Conservation (receive): rx_frames_in = frames that reached >= 1 pool
# + every port-level drop (rx_length_errors, rx_long_length_errors, rx_vlan_filtered, rx_no_pool).
PORT_COUNTERS = (
    "rx_frames_in",  # every frame presented at the port
    "rx_packets",  # frames accepted into at least one pool's queue
    "rx_bytes",
    "rx_length_errors",  # shorter than an Ethernet header (or a truncated VLAN tag)
    "rx_long_length_errors",  # longer than MAXFRS
    "rx_vlan_filtered",  # tagged, VLAN filter on, VFTA bit clear
    "rx_no_pool",  # no pool selected (or every selected pool has receive disabled)
    "rx_pool_copies",  # copies made for pools (replication)
    "rx_no_dma_resources",  # copies dropped: no descriptor (ring empty)
    "rx_dma_faults",  # copies dropped: IOMMU fault on ring or buffer
    "rx_queue_disabled",  # copies dropped: the pool's queue is not enabled
    "rx_missed_errors",  # copies held back by a queue without drop-enable (always 0: DROP_EN on)
    "rx_broadcast",
    "rx_multicast",
    "tx_packets",
    "tx_bytes",
    "tx_spoofed",
    "tx_dropped",
    "tx_dma_faults",
    "tx_wire_packets",
    "tx_local_packets",
    # receive conservation (issue 4): rx_frames_in = rx_classified + the four port-level drops
    "rx_classified",  # frames the L2 switch sent to >= 1 pool (before any per-queue drop)
    # transmit conservation (issue 5, sriov.wire.tx_conservation_errors):
    # tx_posted = tx_packets + tx_dropped; tx_dropped = tx_spoofed + tx_dma_faults + tx_disabled
    # + tx_length_errors; tx_packets = tx_wire_packets + tx_local_packets - tx_flooded
    "tx_posted",  # frames the TX engine took off the rings (descriptor chains ending in EOP)
    "tx_disabled",  # dropped: the pool's transmit enable (VFTE) is clear
    "tx_length_errors",  # dropped: shorter than a header, longer than the MAC sends, too many descriptors
    "tx_flooded",  # forwarded both to local pools (VEB) and to the wire (broadcast/multicast)
    "tx_local_copies",  # copies the VEB made for local pools (each counted as rx_copies of that pool)
    "tx_ring_faults",  # IOMMU faults on descriptor fetch / head write-back (the queue waits; no frame)
    # frames offered to the wire while the link was down: they never entered the port, so they are
    # not in rx_frames_in (the Wire counts them; offered = rx_frames_in + rx_link_down)
    "rx_link_down",
)

# Per pool (the pool of VF n is n; the PF's pool is num_vfs).
POOL_COUNTERS = (
    "rx_packets",
    "rx_bytes",
    "rx_multicast",
    "rx_dropped",  # no descriptor
    "rx_dma_faults",
    "rx_queue_disabled",
    "tx_packets",
    "tx_bytes",
    "tx_spoofed",
    "tx_dropped",
    "tx_dma_faults",
    # receive conservation (issue 4): rx_copies = rx_packets + rx_dropped + rx_dma_faults + rx_queue_disabled
    "rx_copies",  # copies of frames the L2 switch sent to this pool
    # transmit conservation (issue 5): tx_posted = tx_packets + tx_dropped (the sum of the reasons)
    "tx_posted",
    "tx_disabled",
    "tx_length_errors",
    "tx_ring_faults",
)

PORT = {name: i for i, name in enumerate(PORT_COUNTERS)}
POOL = {name: i for i, name in enumerate(POOL_COUNTERS)}
