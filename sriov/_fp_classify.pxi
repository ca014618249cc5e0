# The L2 switch: pool selection of MODEL.md "Pool selection" (and the VT-off decision written in
# sriov/golden/rx.py). Shared by the receive kernel and the transmit kernel's VEB.
# Twin: sriov.golden.rx.select_pools.
#
# The tables it reads (RAR + MPSAR, VMOLR, VLVF + VLVFB) are turned into lookup structures (a RAR
# hash, a VID -> pools array, per-flag pool bitmaps) that are rebuilt only when a raw snapshot of
# those registers differs from the live register file: a memcmp of 3 KiB per call instead of a
# 128-entry scan per frame. MTA, UTA and VFTA are bit tables and are read live.

from libc.string cimport memcmp, memcpy, memmove, memset
from libc.stdint cimport int32_t, uintptr_t

from sriov.hw import regs as _R


cpdef enum DropReason:
    # Why a frame (or one pool's copy of it) was not delivered; DELIVERED when it was.
    # Same names and values as sriov.golden.rx.DropReason; each has its own port counter.
    DELIVERED = 0
    LENGTH_ERROR = 1        # rx_length_errors
    LONG_LENGTH = 2         # rx_long_length_errors
    VLAN_FILTERED = 3       # rx_vlan_filtered
    NO_POOL = 4             # rx_no_pool
    NO_DMA_RESOURCES = 5    # rx_no_dma_resources (pool: rx_dropped)
    DMA_FAULT = 6           # rx_dma_faults
    QUEUE_DISABLED = 7      # rx_queue_disabled
    MISSED = 8              # rx_missed_errors (pool: rx_dropped)
    LINK_DOWN = 9           # rx_link_down: offered while the link was down (set by the Wire, not here)


cdef extern from *:
    int __builtin_ctzll(unsigned long long) nogil

cdef extern from "_fp_simd.h" nogil:
    uint64_t sriov_mac_key(const uint8_t* mac)  # _mac_key from two loads (same value)

# Register word indices and bits, from sriov/hw/regs.py (the one home of register numbers).
cdef Py_ssize_t _W_RAR = _R.RAR_BASE // 4
cdef Py_ssize_t _W_MPSAR = _R.MPSAR_LO(0) // 4
cdef Py_ssize_t _W_VMOLR = _R.VMOLR(0) // 4
cdef Py_ssize_t _W_VLVF = _R.VLVF(0) // 4
cdef Py_ssize_t _W_VLVFB = _R.VLVFB(0) // 4
cdef Py_ssize_t _W_MTA = _R.MTA(0) // 4
cdef Py_ssize_t _W_UTA = _R.UTA(0) // 4
cdef Py_ssize_t _W_VFTA = _R.VFTA(0) // 4
cdef Py_ssize_t _W_VT_CTL = _R.VT_CTL // 4
cdef Py_ssize_t _W_VLNCTRL = _R.VLNCTRL // 4
cdef Py_ssize_t _W_FCTRL = _R.FCTRL // 4
cdef Py_ssize_t _W_MCSTCTRL = _R.MCSTCTRL // 4
cdef Py_ssize_t _W_VFRE = _R.VFRE(0) // 4
cdef Py_ssize_t _W_MAXFRS = _R.MAXFRS // 4
cdef Py_ssize_t _W_GCR_EXT = _R.GCR_EXT // 4
cdef int _NUM_RAR = _R.NUM_RAR
cdef int _NUM_VLVF = _R.NUM_VLVF
cdef int _MAX_POOLS = _R.MAX_POOLS
cdef uint32_t _VMOLR_AUPE = _R.VMOLR_AUPE
cdef uint32_t _VMOLR_ROMPE = _R.VMOLR_ROMPE
cdef uint32_t _VMOLR_ROPE = _R.VMOLR_ROPE
cdef uint32_t _VMOLR_BAM = _R.VMOLR_BAM
cdef uint32_t _VMOLR_MPE = _R.VMOLR_MPE
cdef uint32_t _VLVF_VIEN = _R.VLVF_VIEN
cdef uint32_t _VLVF_VID = _R.VLVF_VLANID_MASK
cdef uint32_t _VT_ENABLE = _R.VT_CTL_VT_ENABLE
cdef uint32_t _VT_DIS_DEFPL = _R.VT_CTL_DIS_DEFPL
cdef uint32_t _VT_POOL_MASK = _R.VT_CTL_POOL_MASK
cdef uint32_t _VT_POOL_SHIFT = _R.VT_CTL_POOL_SHIFT
cdef uint32_t _VLNCTRL_VFE = _R.VLNCTRL_VFE
cdef uint32_t _VLNCTRL_VET = _R.VLNCTRL_VET
cdef uint32_t _FCTRL_BAM = _R.FCTRL_BAM
cdef uint32_t _FCTRL_MPE = _R.FCTRL_MPE
cdef uint32_t _FCTRL_UPE = _R.FCTRL_UPE
cdef uint32_t _MO_MASK = _R.MCSTCTRL_MO_MASK
cdef uint32_t _GCR_VT_MODE_MASK = _R.GCR_EXT_VT_MODE_MASK
cdef uint32_t _GCR_VT_MODE_16 = _R.GCR_EXT_VT_MODE_16
cdef uint32_t _GCR_VT_MODE_32 = _R.GCR_EXT_VT_MODE_32

cdef enum:
    _RAR_SLOTS = 256           # open-addressing hash of at most 128 valid RAR entries
    _SNAP_WORDS = 768          # RAR 256 + MPSAR 256 + VMOLR 64 + VLVF 64 + VLVFB 128
    _NUM_VIDS = 4096

cdef uint64_t _RAR_USED = 1ULL << 63
cdef uint64_t _BROADCAST_KEY = 0xFFFFFFFFFFFFULL


cdef struct RarSlot:
    uint64_t key        # MAC key | _RAR_USED; 0 = empty
    uint64_t pools      # OR of the MPSAR bitmaps of every valid RAR with that MAC


cdef struct L2Tables:
    const uint32_t* regs
    bint built
    uint32_t snap[_SNAP_WORDS]
    RarSlot rar[_RAR_SLOTS]
    uint64_t vid_pools[_NUM_VIDS]   # OR of VLVFB bitmaps of valid VLVF entries, by VID
    uint64_t bam
    uint64_t mpe
    uint64_t rompe
    uint64_t rope
    uint64_t aupe
    # scalars, read once per batch
    bint vt
    bint vfe
    uint32_t vet
    uint32_t fctrl
    uint32_t vt_ctl
    uint32_t mo
    uint64_t vfre
    uint32_t max_frame
    uint32_t qpp


cdef inline uint32_t _rar_hash(uint64_t key) noexcept nogil:
    return <uint32_t>((key * 0x9E3779B97F4A7C15ULL) >> 56) & (_RAR_SLOTS - 1)


cdef inline uint64_t _pair64(const uint32_t* words, Py_ssize_t i) noexcept nogil:
    """Registers i (pools 0-31) and i+1 (pools 32-63) as one 64-pool bitmap."""
    return <uint64_t>words[i] | (<uint64_t>words[i + 1] << 32)


cdef void _l2_snapshot(const uint32_t* regs, uint32_t* snap) noexcept nogil:
    memcpy(snap, regs + _W_RAR, 256 * 4)
    memcpy(snap + 256, regs + _W_MPSAR, 256 * 4)
    memcpy(snap + 512, regs + _W_VMOLR, 64 * 4)
    memcpy(snap + 576, regs + _W_VLVF, 64 * 4)
    memcpy(snap + 640, regs + _W_VLVFB, 128 * 4)


cdef bint _l2_changed(const uint32_t* regs, const uint32_t* snap) noexcept nogil:
    return (memcmp(snap, regs + _W_RAR, 256 * 4) != 0
            or memcmp(snap + 256, regs + _W_MPSAR, 256 * 4) != 0
            or memcmp(snap + 512, regs + _W_VMOLR, 64 * 4) != 0
            or memcmp(snap + 576, regs + _W_VLVF, 64 * 4) != 0
            or memcmp(snap + 640, regs + _W_VLVFB, 128 * 4) != 0)


cdef void _l2_build(L2Tables* t) noexcept nogil:
    cdef const uint32_t* regs = t.regs
    cdef int i, p
    cdef uint32_t ral, rah, v, h
    cdef uint64_t key
    memset(t.rar, 0, sizeof(t.rar))
    for i in range(_NUM_RAR):
        ral = regs[_W_RAR + 2 * i]
        rah = regs[_W_RAR + 2 * i + 1]
        if not rah & RAH_AV:
            continue
        key = ((<uint64_t>(rah & 0xFFFF) << 32) | ral) | _RAR_USED
        h = _rar_hash(key)
        while t.rar[h].key != 0 and t.rar[h].key != key:
            h = (h + 1) & (_RAR_SLOTS - 1)
        t.rar[h].key = key
        t.rar[h].pools |= _pair64(regs, _W_MPSAR + 2 * i)
    memset(t.vid_pools, 0, sizeof(t.vid_pools))
    for i in range(_NUM_VLVF):
        v = regs[_W_VLVF + i]
        if v & _VLVF_VIEN:
            t.vid_pools[v & _VLVF_VID] |= _pair64(regs, _W_VLVFB + 2 * i)
    t.bam = t.mpe = t.rompe = t.rope = t.aupe = 0
    for p in range(_MAX_POOLS):
        v = regs[_W_VMOLR + p]
        if v & _VMOLR_BAM:
            t.bam |= 1ULL << p
        if v & _VMOLR_MPE:
            t.mpe |= 1ULL << p
        if v & _VMOLR_ROMPE:
            t.rompe |= 1ULL << p
        if v & _VMOLR_ROPE:
            t.rope |= 1ULL << p
        if v & _VMOLR_AUPE:
            t.aupe |= 1ULL << p
    _l2_snapshot(regs, t.snap)
    t.built = True


cdef void l2_refresh(L2Tables* t) noexcept nogil:
    """Once per batch: reload the scalar registers; rebuild the tables if their registers changed."""
    cdef const uint32_t* regs = t.regs
    cdef uint32_t mode
    t.vt_ctl = regs[_W_VT_CTL]
    t.vt = (t.vt_ctl & _VT_ENABLE) != 0
    t.vfe = (regs[_W_VLNCTRL] & _VLNCTRL_VFE) != 0
    t.vet = regs[_W_VLNCTRL] & _VLNCTRL_VET
    t.fctrl = regs[_W_FCTRL]
    t.mo = regs[_W_MCSTCTRL] & _MO_MASK
    t.vfre = _pair64(regs, _W_VFRE)
    t.max_frame = regs[_W_MAXFRS] >> 16
    mode = regs[_W_GCR_EXT] & _GCR_VT_MODE_MASK
    t.qpp = 8 if mode == _GCR_VT_MODE_16 else (4 if mode == _GCR_VT_MODE_32 else 2)
    if not t.built or _l2_changed(regs, t.snap):
        _l2_build(t)


cdef inline bint _rar_find(const L2Tables* t, uint64_t key, uint64_t* pools) noexcept nogil:
    cdef uint64_t k = key | _RAR_USED
    cdef uint32_t h = _rar_hash(k)
    while True:
        if t.rar[h].key == k:
            pools[0] = t.rar[h].pools
            return True
        if t.rar[h].key == 0:
            return False
        h = (h + 1) & (_RAR_SLOTS - 1)


cdef inline bint _bit_set(const uint32_t* table, uint32_t index) noexcept nogil:
    return (table[index >> 5] >> (index & 31)) & 1


cdef inline int l2_select(const L2Tables* t, const uint8_t* da, bint tagged, uint32_t vid,
                          bint from_wire, uint64_t* out) noexcept nogil:
    """Pools for a destination MAC ``da`` (6 readable bytes) and VLAN: 0 and ``out``, or a DropReason."""
    cdef uint64_t key = sriov_mac_key(da)
    cdef bint broadcast = key == _BROADCAST_KEY
    cdef bint multicast = (da[0] & 1) != 0
    cdef uint64_t pools = 0
    cdef bint hit
    out[0] = 0
    if tagged and t.vfe and not _bit_set(t.regs + _W_VFTA, vid & 0xFFF):
        return VLAN_FILTERED
    hit = _rar_find(t, key, &pools)
    if not t.vt:
        if broadcast:
            hit = (t.fctrl & _FCTRL_BAM) != 0
        elif multicast:
            hit = (hit or (t.fctrl & _FCTRL_MPE) != 0
                   or _bit_set(t.regs + _W_MTA, _mta_vector(da, t.mo)))
        else:
            hit = hit or (t.fctrl & _FCTRL_UPE) != 0
        if not hit:
            return NO_POOL
        out[0] = 1
        return DELIVERED
    if broadcast:
        pools = t.bam
    elif not hit:
        pools = 0
    if pools == 0 and not broadcast:
        if multicast:
            pools = t.mpe
            if _bit_set(t.regs + _W_MTA, _mta_vector(da, t.mo)):
                pools |= t.rompe
        elif _bit_set(t.regs + _W_UTA, _mta_vector(da, t.mo)):
            pools = t.rope
    if t.vfe:
        if tagged:
            pools &= t.vid_pools[vid & 0xFFF]
        else:
            pools &= t.aupe
    if pools == 0 and not multicast and from_wire and not (t.vt_ctl & _VT_DIS_DEFPL):
        pools = 1ULL << ((t.vt_ctl & _VT_POOL_MASK) >> _VT_POOL_SHIFT)
    pools &= t.vfre
    if pools == 0:
        return NO_POOL
    out[0] = pools
    return DELIVERED
