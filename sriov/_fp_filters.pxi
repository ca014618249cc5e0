# L2 filter primitives shared by the receive and transmit kernels (spec §5.2, §5.4).
# Twin: sriov/golden/filters.py.

cdef enum:
    RAH_AV = 0x80000000


cdef inline uint32_t _mta_vector(const uint8_t* mac, int mo) noexcept nogil:
    """12-bit multicast table vector of a destination MAC for MCSTCTRL.MO (spec §5.4)."""
    cdef uint32_t v
    if mo == 0:
        v = (mac[4] >> 4) | (<uint32_t>mac[5] << 4)
    elif mo == 1:
        v = (mac[4] >> 3) | (<uint32_t>mac[5] << 5)
    elif mo == 2:
        v = (mac[4] >> 2) | (<uint32_t>mac[5] << 6)
    else:
        v = mac[4] | (<uint32_t>mac[5] << 8)
    return v & 0xFFF


cdef inline uint64_t _mac_key(const uint8_t* mac) noexcept nogil:
    """A MAC as a 48-bit integer, byte 0 in the low byte (the RAL/RAH order)."""
    return (<uint64_t>mac[0] | (<uint64_t>mac[1] << 8) | (<uint64_t>mac[2] << 16)
            | (<uint64_t>mac[3] << 24) | (<uint64_t>mac[4] << 32) | (<uint64_t>mac[5] << 40))


cdef inline uint64_t _rar_pools(const uint32_t[:, ::1] rar, const uint64_t[::1] mpsar,
                                uint64_t key) noexcept nogil:
    """OR of the MPSAR bitmaps of every valid RAR entry equal to ``key``."""
    cdef Py_ssize_t i
    cdef uint64_t pools = 0
    for i in range(rar.shape[0]):
        if rar[i, 1] & RAH_AV:
            if ((<uint64_t>(rar[i, 1] & 0xFFFF) << 32) | rar[i, 0]) == key:
                pools |= mpsar[i]
    return pools


def mta_vectors(const uint8_t[:, ::1] macs, int mo, uint16_t[::1] out):
    """Write the MTA hash vector of each row of ``macs`` (n x 6) into ``out`` (n)."""
    if macs.shape[1] != 6:
        raise ValueError(f"macs must have 6 columns, got {macs.shape[1]}")
    if out.shape[0] != macs.shape[0]:
        raise ValueError(f"out has {out.shape[0]} slots for {macs.shape[0]} addresses")
    if not 0 <= mo <= 3:
        raise ValueError(f"MCSTCTRL.MO must be 0..3, got {mo}")
    cdef Py_ssize_t i
    with nogil:
        for i in range(macs.shape[0]):
            out[i] = <uint16_t>_mta_vector(&macs[i, 0], mo)


def rar_lookup(const uint32_t[:, ::1] rar, const uint64_t[::1] mpsar,
               const uint8_t[:, ::1] macs, uint64_t[::1] out):
    """Pool bitmap of every exact RAR match for each row of ``macs`` (n x 6) into ``out``."""
    if rar.shape[1] != 2 or mpsar.shape[0] != rar.shape[0]:
        raise ValueError("rar must be (n, 2) (RAL, RAH) with one MPSAR bitmap per entry")
    if macs.shape[1] != 6 or out.shape[0] != macs.shape[0]:
        raise ValueError("macs must be (n, 6) and out must have n slots")
    cdef Py_ssize_t i
    with nogil:
        for i in range(macs.shape[0]):
            out[i] = _rar_pools(rar, mpsar, _mac_key(&macs[i, 0]))
