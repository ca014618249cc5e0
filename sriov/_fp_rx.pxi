# The receive flow (MODEL.md "Frames at the port", "Pool selection", "Into the ring"): one batch of
# frames -> length checks, VLAN tag, L2 switch, one copy per pool into the pool's first queue through
# the owning function's IOMMU domain, write-back descriptors, RDH, counters.
# GIL released for the whole batch; nothing allocated per frame; every index is checked before use,
# so no frame bytes and no register value can make it read or write outside the arrays it holds.
# Twin: sriov/golden/rx.py (RxKernel).

cimport cython

from sriov.errors import ConfigError as _ConfigError
from sriov.hw import counters as _C
from sriov.hw import iommu as _iommu
import numpy as _np

cdef Py_ssize_t _W_RXQ_LO = _R.RX_QUEUE_BASE_LO // 4
cdef Py_ssize_t _W_RXQ_HI = _R.RX_QUEUE_BASE_HI // 4
cdef Py_ssize_t _QW_RDBAL = _R.Q_RDBAL // 4
cdef Py_ssize_t _QW_RDBAH = _R.Q_RDBAH // 4
cdef Py_ssize_t _QW_RDLEN = _R.Q_RDLEN // 4
cdef Py_ssize_t _QW_RDH = _R.Q_RDH // 4
cdef Py_ssize_t _QW_SRRCTL = _R.Q_SRRCTL // 4
cdef Py_ssize_t _QW_RDT = _R.Q_RDT // 4
cdef Py_ssize_t _QW_RXDCTL = _R.Q_RXDCTL // 4
cdef int _MAX_QUEUES = _R.MAX_QUEUES
cdef uint32_t _RXDCTL_ENABLE = _R.RXDCTL_ENABLE
cdef uint32_t _RXDCTL_VME = _R.RXDCTL_VME
cdef uint32_t _SRRCTL_DROP_EN = _R.SRRCTL_DROP_EN
cdef uint32_t _SRRCTL_BSIZE_MASK = _R.SRRCTL_BSIZEPKT_MASK
cdef uint32_t _SRRCTL_BSIZE_SHIFT = _R.SRRCTL_BSIZEPKT_SHIFT
cdef uint8_t _QDE_ENABLE = _R.QDE_ENABLE
# The per-frame constants are C constants (folded into the instructions, not loaded from module
# variables on every frame); their values are checked against sriov.hw.regs / sriov.hw.iommu at import.
cdef extern from *:
    """
    #define SRIOV_STAT_DD 0x1u
    #define SRIOV_STAT_EOP 0x2u
    #define SRIOV_STAT_VP 0x8u
    #define SRIOV_ETH_HLEN 14u
    #define SRIOV_VLAN_HLEN 4u
    #define SRIOV_ETH_ZLEN 60u
    #define SRIOV_ETH_FCS_LEN 4u
    #define SRIOV_PTE_VALID (1ULL << 63)
    #define SRIOV_PTE_WRITABLE (1ULL << 62)
    #define SRIOV_PTE_BUFFER_SHIFT 40
    #define SRIOV_PTE_BUFFER_MASK 0x3FFFFFULL
    #define SRIOV_PTE_OFFSET_MASK 0xFFFFFFFFFFULL
    #define SRIOV_PAGE_SHIFT 12
    #define SRIOV_PAGE_MASK 0xFFFULL
    """
    const uint32_t _STAT_DD "SRIOV_STAT_DD"
    const uint32_t _STAT_EOP "SRIOV_STAT_EOP"
    const uint32_t _STAT_VP "SRIOV_STAT_VP"
    const uint32_t _ETH_HLEN "SRIOV_ETH_HLEN"
    const uint32_t _VLAN_HLEN "SRIOV_VLAN_HLEN"
    const uint32_t _ETH_ZLEN "SRIOV_ETH_ZLEN"
    const uint32_t _ETH_FCS_LEN "SRIOV_ETH_FCS_LEN"
    const uint64_t _PTE_VALID "SRIOV_PTE_VALID"
    const uint64_t _PTE_WRITABLE "SRIOV_PTE_WRITABLE"
    const int _PTE_BUFFER_SHIFT "SRIOV_PTE_BUFFER_SHIFT"
    const uint64_t _PTE_BUFFER_MASK "SRIOV_PTE_BUFFER_MASK"
    const uint64_t _PTE_OFFSET_MASK "SRIOV_PTE_OFFSET_MASK"
    const int _PAGE_SHIFT "SRIOV_PAGE_SHIFT"
    const uint64_t _PAGE_MASK "SRIOV_PAGE_MASK"

if ((_STAT_DD, _STAT_EOP, _STAT_VP) != (_R.RXD_STAT_DD, _R.RXD_STAT_EOP, _R.RXD_STAT_VP)
        or (_ETH_HLEN, _VLAN_HLEN, _ETH_ZLEN, _ETH_FCS_LEN) != (_R.ETH_HLEN, _R.VLAN_HLEN, _R.ETH_ZLEN,
                                                              _R.ETH_FCS_LEN)
        or (_PTE_VALID, _PTE_WRITABLE, _PTE_BUFFER_SHIFT, _PTE_BUFFER_MASK, _PTE_OFFSET_MASK)
        != (_iommu.PTE_VALID, _iommu.PTE_WRITABLE, _iommu.PTE_BUFFER_SHIFT, _iommu.PTE_BUFFER_MASK,
            _iommu.PTE_OFFSET_MASK)
        or (_PAGE_SHIFT, _PAGE_MASK) != (_iommu.PAGE_SHIFT, _iommu.PAGE_SIZE - 1)):
    raise ImportError("sriov._fastpath: descriptor/frame/IOMMU constants in sriov.hw changed; "
                      "update the constants of _fp_rx.pxi")
cdef uint8_t _FAULT_NOT_MAPPED = _iommu.FAULT_NOT_MAPPED
cdef uint8_t _FAULT_READ_ONLY = _iommu.FAULT_READ_ONLY
cdef Py_ssize_t _ARRIVAL_SLOTS = 65536  # per queue: the largest ring RDLEN can describe (65528)

cdef enum:
    _MAX_FRAME_DESCS = 64     # a frame of <= 65535 bytes in buffers of >= 1 KiB
    _MAX_CHUNKS = 192         # page-sized pieces of one frame's buffers (<= 16 + 2 per descriptor)
    _Q_UNLOADED = 0
    _Q_READY = 1
    _Q_DISABLED = 2

# port counter slots the kernel adds to, in this order (names from sriov/hw/counters.py)
_PORT_SLOTS = ("rx_frames_in", "rx_packets", "rx_bytes", "rx_length_errors", "rx_long_length_errors",
               "rx_vlan_filtered", "rx_no_pool", "rx_pool_copies", "rx_no_dma_resources", "rx_dma_faults",
               "rx_queue_disabled", "rx_missed_errors", "rx_broadcast", "rx_multicast", "rx_classified")
cdef enum:
    _P_IN = 0
    _P_PACKETS
    _P_BYTES
    _P_LENGTH
    _P_LONG
    _P_VLAN
    _P_NOPOOL
    _P_COPIES
    _P_NODMA
    _P_FAULT
    _P_QDIS
    _P_MISSED
    _P_BCAST
    _P_MCAST
    _P_CLASSIFIED
    _P_N
_POOL_SLOTS = ("rx_copies", "rx_packets", "rx_bytes", "rx_multicast", "rx_dropped", "rx_dma_faults",
               "rx_queue_disabled")
cdef enum:
    _Q_COPIES = 0
    _Q_PACKETS
    _Q_BYTES
    _Q_MCAST
    _Q_DROPPED
    _Q_FAULT
    _Q_QDIS
    _Q_N


cdef enum:
    _FLOW_SLOTS = 64        # per-batch cache of the L2 switch's answers (direct-mapped)
    _FLOW_SLOW = 0xFF       # FlowSlot.fast: not a unicast frame to exactly one pool
    _BLOCK = 32             # frames per block of RxKernel._run's two passes
    _FIRST_BLOCK = 4        # frames in a batch's first block (bursts of 32: 24 take the fast pass)

cdef uint64_t _FLOW_USED = 1ULL << 63


cdef struct FlowSlot:
    uint64_t tag            # MAC key | tagged << 48 | VID << 49 | _FLOW_USED; 0 = empty
    uint64_t pools
    int r
    uint8_t fast            # the one pool of a unicast flow delivered to exactly one pool, else _FLOW_SLOW


cdef struct QState:
    int state
    int q                   # PF queue index
    uint32_t* blk           # the queue's 16-word register block
    uint64_t base           # ring IOVA (RDBAL bits 6:0 ignored)
    uint32_t count          # descriptors in the ring
    uint32_t head
    uint32_t avail          # descriptors hardware owns (head .. tail-1)
    uint32_t bsize
    bint strip_on
    bint drop_en
    bint moved              # head advanced this batch: RDH is written back
    const uint64_t* pt      # owning function's IOMMU page table
    uint64_t npt
    int32_t domain
    const uint64_t* buf_addr  # the IOMMU's host buffer table
    const uint64_t* buf_size
    uint64_t nbuf
    uint8_t* ring_host      # the whole ring when it is mapped writable in one host buffer, else NULL
    # buffer window: guest addresses [win_lo, win_lo + win_len) known to map writable onto one
    # contiguous stretch of one host buffer starting at win_host (win_len 0: none yet); found on
    # a miss, valid for the batch like ring_host
    uint64_t win_lo
    uint64_t win_len
    uint8_t* win_host
    int64_t* arrival         # per descriptor: when the frame that starts there arrived (ns)
    # the ring and window of the last run, kept for the next one when nothing but the data path
    # ran in between (RxKernel.keep) and the ring is where it was
    bint k_valid
    uint64_t k_base
    uint32_t k_count
    int32_t k_domain
    uint8_t* k_ring_host
    uint64_t k_win_lo
    uint64_t k_win_len
    uint8_t* k_win_host
    # this pool's counts of the current RxKernel._run, added to the pool counters once at its end
    uint64_t n_drops         # copies not delivered (rx_copies = n_packets + n_drops)
    uint64_t n_packets
    uint64_t n_bytes
    uint64_t n_mcast


cdef struct Recycle:
    # one ring's recycle (RxRingCore._recycle): in, next_to_use / next_to_clean / frame limit;
    # out, the new next_to_use, the frames and descriptors taken, the wrapping frame (or -1),
    # their bytes, and whether the tail could not be stored straight into its register word
    Py_ssize_t ntu
    Py_ssize_t ntc
    Py_ssize_t limit
    Py_ssize_t frames
    Py_ssize_t used
    Py_ssize_t wrap
    uint64_t nbytes
    bint unwritten


cdef struct RunCtx:
    # one RxKernel._run: the batch's arrays and what it adds to the counters (see _general)
    const uint8_t* data
    const int64_t* offs
    const uint32_t* lens
    const int64_t* ts
    uint64_t* sel
    uint64_t* dlv
    uint8_t* rsn
    uint64_t* pool_c
    int ps_dropped
    int ps_fault
    int ps_qdis
    Py_ssize_t accepted
    uint64_t pc[_P_N]


cdef extern from "_fp_simd.h" nogil:
    # store helpers in C (see the header for why): little-endian 8-byte loads/stores, the 16-byte
    # write-back as two direct stores, SSE2 streaming copies with a portable fallback
    uint64_t sriov_ld64le(const uint8_t* p)
    void sriov_wb16(uint8_t* dp, uint32_t status, uint32_t length, uint32_t vlan)
    void sriov_wb16w(uint8_t* dp, uint64_t word1)
    void sriov_stream_copy(uint8_t* dst, const uint8_t* src, uint32_t n)
    void sriov_stream_copy_line(uint8_t* dst, const uint8_t* src, uint32_t n)
    void sriov_plain_copy_line(uint8_t* dst, const uint8_t* src, uint32_t n)
    uint32_t sriov_ld16be(const uint8_t* p)
    void sriov_store_fence()
    uint64_t sriov_fetch_add64(uint64_t* p, uint64_t v)
    int SRIOV_HAVE_STREAM


# How the receive kernels store frame bytes (process-wide, `set_rx_stores`): streaming stores
# (a buffer's lines go to memory without being read first) or plain ones (they stay in the
# caches, as DDIO puts a NIC's writes in the LLC). The bytes written are the same.
cdef int _STORES_STREAM = 1, _STORES_PLAIN = 2
cdef int _rx_stores = _STORES_STREAM
_STORE_MODES = {"stream": _STORES_STREAM, "plain": _STORES_PLAIN}


def set_rx_stores(mode):
    """How the receive kernels write frames into guest memory, process-wide: ``"stream"`` (the
    default: non-temporal stores wherever a buffer's lines allow) or ``"plain"``. Only the store
    instructions differ: every byte, descriptor and counter is the same. Streaming skips reading
    a buffer's lines before writing them and is the faster on one core and, on the reference
    machine, for two cores together too; plain stores leave the frames in the caches (as DDIO
    does), for a consumer that reads them at once, and scale better across cores
    (benchmarks/RESULTS.md, "Two ports on two cores")."""
    global _rx_stores
    if mode not in _STORE_MODES:
        raise _ConfigError(f"store mode must be one of {sorted(_STORE_MODES)}, got {mode!r}")
    _rx_stores = _STORE_MODES[mode]


def rx_stores():
    """The receive kernels' store mode (`set_rx_stores`)."""
    return next(k for k, v in _STORE_MODES.items() if v == _rx_stores)


cdef inline bint _stream_now() noexcept nogil:
    """Stream this block's frames? (`set_rx_stores`)"""
    return _rx_stores == _STORES_STREAM


cdef inline uint64_t _ld64le(const uint8_t* p) noexcept nogil:
    return sriov_ld64le(p)


cdef inline void _st32le(uint8_t* p, uint32_t v) noexcept nogil:
    p[0] = v & 0xFF
    p[1] = (v >> 8) & 0xFF
    p[2] = (v >> 16) & 0xFF
    p[3] = (v >> 24) & 0xFF


cdef inline void _write_back(uint8_t* dp, uint32_t status, uint32_t length, uint32_t vlan) noexcept nogil:
    """The 16-byte advanced write-back descriptor: info 0, RSS 0, status_error, length, VLAN (LE)."""
    sriov_wb16(dp, status, length, vlan)


cdef inline void _copy_bytes(uint8_t* dst, const uint8_t* src, uint32_t n) noexcept nogil:
    """memmove, with small copies done inline in 32-byte blocks (most frames are small)."""
    if n > 256 or (dst < src + n and src < dst + n):
        memmove(dst, src, n)
        return
    while n >= 32:
        memcpy(dst, src, 32)
        dst += 32
        src += 32
        n -= 32
    if n >= 16:
        memcpy(dst, src, 16)
        dst += 16
        src += 16
        n -= 16
    if n:
        memcpy(dst, src, n)


cdef inline void _emit(uint8_t* dst, const uint8_t* f, uint32_t flen, uint32_t p, uint32_t n) noexcept nogil:
    """Bytes [p, p+n) of the frame as the port sees it: captured bytes, then zero padding."""
    cdef uint32_t k
    if p < flen:
        k = flen - p
        if k > n:
            k = n
        _copy_bytes(dst, f + p, k)
        dst += k
        n -= k
    if n:
        memset(dst, 0, n)


cdef inline void _stream(uint8_t* dst, const uint8_t* f, uint32_t flen, bint strip, uint32_t o,
                         uint32_t n) noexcept nogil:
    """Bytes [o, o+n) of the frame as delivered: the port's frame minus the VLAN tag when stripped."""
    cdef uint32_t k
    if strip:
        if o < 12:
            k = 12 - o
            if k > n:
                k = n
            _emit(dst, f, flen, o, k)
            dst += k
            o += k
            n -= k
        if n:
            _emit(dst, f, flen, o + 4, n)
    else:
        _emit(dst, f, flen, o, n)


cdef inline bint _one_line(uint8_t* dst, const uint8_t* f, uint32_t flen, bint strip, uint32_t n,
                           bint stream) noexcept nogil:
    """A frame of 48-64 captured bytes, unstripped, whose buffer does not overlap it: copied as
    one line, streamed into a line-aligned buffer (``stream``) or with plain 16-byte stores
    (the plain store mode). False, nothing written, for anything else."""
    if strip or n < 48 or n > 64 or flen < n or not (dst >= f + n or f >= dst + n):
        return False
    if not stream:
        sriov_plain_copy_line(dst, f, n)
        return True
    if not SRIOV_HAVE_STREAM or (<uintptr_t>dst & 63) != 0:
        return False
    sriov_stream_copy_line(dst, f, n)
    return True


cdef inline void _deliver(uint8_t* dst, const uint8_t* f, uint32_t flen, bint strip, uint32_t n,
                          bint stream) noexcept nogil:
    """`_stream` of bytes [0, n) into a receive buffer: a one-line frame as `_one_line` copies
    it; a longer one into a 64-byte aligned buffer goes out as streaming stores down to its last
    4-byte piece, the end of a line included (nobody reads the buffer before the driver: no
    read-for-ownership of its lines), the rest as plain stores. The same bytes either way;
    `sriov_store_fence` ends the batch. ``stream``: the kernel's store mode for this block
    (`_stream_now`); plain stores all through when false."""
    if n <= 64 and _one_line(dst, f, flen, strip, n, stream):
        return
    if (SRIOV_HAVE_STREAM and stream and not strip and n > 64 and flen >= n and (<uintptr_t>dst & 63) == 0
            and (dst >= f + n or f >= dst + n)):
        sriov_stream_copy(dst, f, n)
        return
    _stream(dst, f, flen, strip, 0, n)


cdef void _deliver_any(uint8_t* dst, const uint8_t* f, uint32_t flen, bint strip, uint32_t n,
                       bint stream) noexcept nogil:
    """`_deliver` out of line (the fast pass's frames other than one streamed line: its loop
    stays small)."""
    _deliver(dst, f, flen, strip, n, stream)


cdef inline int _xlate(const QState* qs, uint64_t iova, uint32_t span, uint8_t** out) noexcept nogil:
    """Host pointer for a write of ``span`` bytes inside one page of ``iova``, or a fault kind."""
    cdef uint64_t page = iova >> _PAGE_SHIFT
    cdef uint64_t pte, bid, off
    if page >= qs.npt:
        return _FAULT_NOT_MAPPED
    pte = qs.pt[page]
    if not pte & _PTE_VALID:
        return _FAULT_NOT_MAPPED
    if not pte & _PTE_WRITABLE:
        return _FAULT_READ_ONLY
    bid = (pte >> _PTE_BUFFER_SHIFT) & _PTE_BUFFER_MASK
    off = (pte & _PTE_OFFSET_MASK) + (iova & _PAGE_MASK)
    if bid >= qs.nbuf or off + span > qs.buf_size[bid]:
        return _FAULT_NOT_MAPPED
    out[0] = <uint8_t*><uintptr_t>(qs.buf_addr[bid] + off)
    return 0


cdef uint8_t* _ring_host(const QState* qs) noexcept nogil:
    """The ring's host memory when every page of it translates (writable) into one contiguous
    stretch of one host buffer: then a descriptor needs no page walk. NULL otherwise (the kernel
    then translates descriptor by descriptor, faults included)."""
    cdef uint64_t first = qs.base, size = <uint64_t>qs.count * 16, page, pte, bid, off0
    cdef uint8_t* p0 = NULL
    if size == 0 or first + size < first:
        return NULL
    if _xlate(qs, first, 1, &p0):
        return NULL
    pte = qs.pt[first >> _PAGE_SHIFT]
    bid = (pte >> _PTE_BUFFER_SHIFT) & _PTE_BUFFER_MASK
    off0 = (pte & _PTE_OFFSET_MASK) + (first & _PAGE_MASK)
    if off0 + size > qs.buf_size[bid]:
        return NULL
    for page in range((first >> _PAGE_SHIFT) + 1, ((first + size - 1) >> _PAGE_SHIFT) + 1):
        if page >= qs.npt:
            return NULL
        pte = qs.pt[page]
        if (not pte & _PTE_VALID or not pte & _PTE_WRITABLE
                or ((pte >> _PTE_BUFFER_SHIFT) & _PTE_BUFFER_MASK) != bid
                or (pte & _PTE_OFFSET_MASK) != off0 - (first & _PAGE_MASK)
                + ((page - (first >> _PAGE_SHIFT)) << _PAGE_SHIFT)):
            return NULL
    return p0


cdef enum:
    _WIN_PAGES = 32   # pages a buffer window may span (128 KiB: 64 buffers of 2 KiB)


cdef int _find_window(QState* qs, uint64_t addr) noexcept nogil:
    """Set the queue's buffer window to the run of whole pages from ``addr``'s page on that map
    writable and contiguously into one host buffer (at most _WIN_PAGES); 0 if there is one."""
    cdef uint64_t page = addr >> _PAGE_SHIFT, pte, bid, off0, n = 0, lim
    qs.win_len = 0
    if page >= qs.npt:
        return -1
    pte = qs.pt[page]
    bid = (pte >> _PTE_BUFFER_SHIFT) & _PTE_BUFFER_MASK
    off0 = pte & _PTE_OFFSET_MASK
    if bid >= qs.nbuf or not pte & _PTE_VALID or not pte & _PTE_WRITABLE:
        return -1
    # pages that fit in the host buffer (and in the table, and in the window's cap)
    if off0 >= qs.buf_size[bid]:
        return -1
    lim = (qs.buf_size[bid] - off0) >> _PAGE_SHIFT
    if lim > qs.npt - page:
        lim = qs.npt - page
    if lim > _WIN_PAGES:
        lim = _WIN_PAGES
    if lim > (_PTE_OFFSET_MASK + 1 - off0) >> _PAGE_SHIFT:
        lim = (_PTE_OFFSET_MASK + 1 - off0) >> _PAGE_SHIFT
    # page n continues the run when its entry is the first one's with the host offset n pages on
    # (same flags, same buffer: the offset stays below the buffer's size, so it never carries
    # into the buffer id)
    while n < lim and qs.pt[page + n] == pte + (n << _PAGE_SHIFT):
        n += 1
    if n == 0:
        return -1
    qs.win_lo = page << _PAGE_SHIFT
    qs.win_len = n << _PAGE_SHIFT
    qs.win_host = <uint8_t*><uintptr_t>(qs.buf_addr[bid] + off0)
    return 0


cdef inline bint _in_window(const QState* qs, uint64_t addr, uint32_t n) noexcept nogil:
    return addr >= qs.win_lo and n <= qs.win_len and addr - qs.win_lo <= qs.win_len - n


cdef inline int _copy_fast(QState* qs, const uint8_t* f, uint32_t flen, uint32_t plen, bint tagged,
                           uint32_t tci, uint32_t* written, bint stream, int64_t t) noexcept nogil:
    """The common delivery, small enough to inline: a ready queue whose ring is mapped, one
    descriptor, a buffer inside one page that translates. -1 when any of that does not hold (then
    `RxKernel._copy` decides, faults and drops included); 0 (DELIVERED) when done."""
    cdef bint strip
    cdef uint32_t dlen, status, vlan = 0
    cdef uint64_t addr
    cdef uint8_t* dp
    cdef uint8_t* p = NULL
    if qs.state != _Q_READY or qs.ring_host == NULL or qs.avail == 0:
        return -1
    strip = tagged and qs.strip_on
    dlen = plen - _VLAN_HLEN if strip else plen
    if dlen > qs.bsize:
        return -1
    dp = qs.ring_host + <uint64_t>qs.head * 16
    addr = _ld64le(dp)
    # the buffer through the queue's window (no page walk), else a new window from its page;
    # anything the window cannot vouch for goes to RxKernel._copy (faults included)
    if not _in_window(qs, addr, dlen) and (_find_window(qs, addr) != 0 or not _in_window(qs, addr, dlen)):
        return -1
    p = qs.win_host + (addr - qs.win_lo)
    _deliver(p, f, flen, strip, dlen, stream)
    status = _STAT_DD | _STAT_EOP
    if tagged:
        status |= _STAT_VP
        vlan = tci
    _write_back(dp, status, dlen, vlan)
    qs.arrival[qs.head] = t
    qs.head += 1
    if qs.head == qs.count:
        qs.head = 0
    qs.moved = True  # (the transmit kernel's VEB flush reads it)
    qs.avail -= 1
    written[0] = dlen
    return DELIVERED


cdef inline void _sort_queues(int* q, int n) noexcept nogil:
    """Ascending order (insertion sort: a batch writes to a few queues)."""
    cdef int i, j, x
    for i in range(1, n):
        x = q[i]
        j = i - 1
        while j >= 0 and q[j] > x:
            q[j + 1] = q[j]
            j -= 1
        q[j + 1] = x


cdef Py_ssize_t _first_out_of_bounds(Py_ssize_t data_len, const int64_t* offs, const uint32_t* lens,
                                     Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if offs[i] < 0 or offs[i] > data_len or <int64_t>lens[i] > data_len - offs[i]:
            return i
    return -1


@cython.final  # direct (inlinable) calls to the cdef methods instead of through the vtable
cdef class RxKernel:
    """The receive flow of one port, bound once to the device's arrays (compiled twin of
    ``sriov.golden.rx.RxKernel``).

    ``receive(...)`` runs a whole batch; ``bind(...)`` then ``burst(n)`` is the embedding entry point:
    arrays bound once, frames ``[0, n)`` of them run per call with no allocation. ``queue_frames[q]``
    holds the frames written to PF queue ``q`` by the last call. Not for two threads at once (one
    kernel per port; two ports run in parallel, the GIL is released).
    """

    cdef object device
    cdef object iommu
    cdef readonly object queue_frames
    # the PF queues the last call wrote frames to, ascending (the interrupt causes to raise)
    cdef int written[128]
    cdef int nwritten
    # Set by the engine for a run when only the data path ran since the kernel's last run (no
    # Python: no register, table or IOMMU change): the L2 tables, the flow cache and the rings'
    # translations of that run still hold. Cleared after every run.
    cdef bint keep
    cdef object _arrival_keep
    cdef int64_t* arrival           # the device's arrival times, _ARRIVAL_SLOTS per queue
    cdef bint stream  # this block's store mode (`_stream_now`), for the per-frame paths
    cdef L2Tables t
    cdef uint32_t[::1] _regs
    cdef uint64_t[::1] _port
    cdef uint64_t[::1] _pool
    cdef const uint8_t[::1] _qde
    cdef uint32_t[::1] _qframes
    cdef int port_slot[_P_N]
    cdef int pool_slot[_Q_N]
    cdef int npc
    # IOMMU binding (re-done when iommu.generation or the VF count changes)
    cdef Py_ssize_t generation
    cdef Py_ssize_t nvfs
    cdef list _keep
    cdef const uint64_t* pool_pt[64]
    cdef uint64_t pool_npt[64]
    cdef int32_t pool_dom[64]
    cdef const uint64_t* pf_pt
    cdef uint64_t pf_npt
    cdef int32_t pf_dom
    cdef const uint64_t* buf_addr
    cdef const uint64_t* buf_size
    cdef uint64_t nbuf
    cdef int32_t* f_dom
    cdef uint64_t* f_addr
    cdef uint8_t* f_kind
    cdef uint64_t* f_total
    cdef uint64_t* f_counts
    cdef uint64_t f_log
    cdef uint64_t n_fcounts
    # per-batch queue state
    cdef FlowSlot flow[_FLOW_SLOTS]
    cdef QState qs[64]
    cdef int loaded[64]
    cdef int nloaded
    cdef uint8_t* dptr[_MAX_FRAME_DESCS]
    cdef uint32_t dlen_of[_MAX_FRAME_DESCS]
    cdef uint8_t* cptr[_MAX_CHUNKS]
    cdef uint32_t clen[_MAX_CHUNKS]
    cdef Py_ssize_t nblock            # frames per block of _run's two passes (1.._BLOCK)
    # bound burst arrays
    cdef bint bound
    cdef Py_ssize_t bcap
    cdef const uint8_t[::1] b_data
    cdef const int64_t[::1] b_offs
    cdef const uint32_t[::1] b_lens
    cdef const int64_t[::1] b_ts
    cdef uint64_t[::1] b_sel
    cdef uint64_t[::1] b_dlv
    cdef uint8_t[::1] b_rsn

    def __init__(self, device):
        cdef int i
        self.device = device
        self.iommu = device.iommu
        cdef int64_t[:, ::1] arr
        arrival = getattr(device, "rx_arrival", None)
        if arrival is None:  # a device without a timestamp table: a private one, never read
            arrival = _np.zeros((_MAX_QUEUES, _ARRIVAL_SLOTS), _np.int64)
        arr = arrival
        if arr.shape[0] != _MAX_QUEUES or arr.shape[1] != _ARRIVAL_SLOTS:
            raise _ConfigError(f"rx_arrival must be ({_MAX_QUEUES}, {_ARRIVAL_SLOTS}) int64")
        self._arrival_keep = arrival
        self.arrival = &arr[0, 0]
        self.nwritten = 0
        self._regs = device.regs
        self.t.regs = &self._regs[0]
        self.t.built = False
        self._port = device.state.port_counters
        self._pool = device.state.pool_counters.reshape(-1)
        if not _np.shares_memory(self._pool, device.state.pool_counters):
            raise _ConfigError("pool counters must be one contiguous array")
        self._qde = device.qde
        self.npc = len(_C.POOL_COUNTERS)
        for i, name in enumerate(_PORT_SLOTS):
            self.port_slot[i] = _C.PORT[name]
        for i, name in enumerate(_POOL_SLOTS):
            self.pool_slot[i] = _C.POOL[name]
        self.queue_frames = _np.zeros(_MAX_QUEUES, dtype=_np.uint32)
        self._qframes = self.queue_frames
        self.nloaded = 0
        for i in range(64):
            self.qs[i].state = _Q_UNLOADED
        self.bound = False
        self.nblock = _BLOCK
        self._bind_iommu()

    @property
    def written(self):
        """The PF queues the last call wrote frames to, ascending."""
        return [self.written[w] for w in range(self.nwritten)]

    @property
    def block(self):
        """Frames per block of the kernel's two passes (1..32, 32 by default). No result depends
        on it; a frame takes the fast pass only once its flow is known, i.e. from the next block
        on, so tests set it small to reach that pass in short batches."""
        return self.nblock

    @block.setter
    def block(self, Py_ssize_t value):
        if not 1 <= value <= _BLOCK:
            raise _ConfigError(f"block of {value} frames: allowed 1..{_BLOCK}")
        self.nblock = value

    def _bind_iommu(self):
        """Take raw pointers to the page tables, buffer table and fault log (after any reallocation)."""
        cdef int p
        cdef uint64_t[::1] mv
        cdef const uint64_t[::1] cmv
        cdef int32_t[::1] dmv
        cdef uint8_t[::1] kmv
        iommu = self.iommu
        device = self.device
        self._keep = []
        self.generation = iommu.generation
        self.nvfs = len(device.vfs)
        for p in range(64):
            fn = device.vfs[p] if p < self.nvfs else device.pf
            cmv = fn.domain.page_table
            self._keep.append(cmv)
            self.pool_pt[p] = &cmv[0]
            self.pool_npt[p] = cmv.shape[0]
            self.pool_dom[p] = fn.domain.id
        cmv = device.pf.domain.page_table
        self._keep.append(cmv)
        self.pf_pt = &cmv[0]
        self.pf_npt = cmv.shape[0]
        self.pf_dom = device.pf.domain.id
        cmv = iommu.buffer_addrs
        self._keep.append(cmv)
        self.buf_addr = &cmv[0]
        self.nbuf = cmv.shape[0]
        cmv = iommu.buffer_sizes
        self._keep.append(cmv)
        self.buf_size = &cmv[0]
        if <uint64_t>cmv.shape[0] < self.nbuf:
            self.nbuf = cmv.shape[0]
        dmv = iommu.fault_domain
        self._keep.append(dmv)
        self.f_dom = &dmv[0]
        self.f_log = dmv.shape[0]
        mv = iommu.fault_addr
        self._keep.append(mv)
        self.f_addr = &mv[0]
        if <uint64_t>mv.shape[0] < self.f_log:
            self.f_log = mv.shape[0]
        kmv = iommu.fault_kind
        self._keep.append(kmv)
        self.f_kind = &kmv[0]
        if <uint64_t>kmv.shape[0] < self.f_log:
            self.f_log = kmv.shape[0]
        mv = iommu.fault_total
        self._keep.append(mv)
        self.f_total = &mv[0]
        mv = iommu.fault_counts
        self._keep.append(mv)
        self.f_counts = &mv[0]
        self.n_fcounts = mv.shape[0]

    cdef inline int _check_binding(self) except -1:
        if self.iommu.generation != self.generation or len(self.device.vfs) != self.nvfs:
            self._bind_iommu()
        return 0

    # -- Python entry points --------------------------------------------------------------------
    def receive(self, const uint8_t[::1] data not None, const int64_t[::1] offsets not None,
                const uint32_t[::1] lengths not None, const int64_t[::1] timestamps not None,
                uint64_t[::1] selected not None, uint64_t[::1] delivered not None,
                uint8_t[::1] reasons not None):
        """Run every frame of the batch; returns the frames delivered to at least one pool."""
        cdef Py_ssize_t n = offsets.shape[0]
        cdef Py_ssize_t bad, res = 0
        if lengths.shape[0] != n or timestamps.shape[0] != n:
            raise _ConfigError(f"offsets, lengths and timestamps differ in length ({n}, {lengths.shape[0]})")
        if selected.shape[0] < n or delivered.shape[0] < n or reasons.shape[0] < n:
            raise _ConfigError(f"selected, delivered and reasons must each have >= {n} slots")
        self.nwritten = 0
        if n == 0:
            self._qframes[:] = 0
            return 0
        self._check_binding()
        with nogil:
            bad = _first_out_of_bounds(data.shape[0], &offsets[0], &lengths[0], n)
            if bad < 0:
                res = self._run(&data[0] if data.shape[0] else NULL, &offsets[0], &lengths[0],
                                &timestamps[0], n, &selected[0], &delivered[0], &reasons[0])
        if bad >= 0:
            raise _ConfigError(
                f"frame {bad} ([{offsets[bad]}, {offsets[bad] + lengths[bad]})) lies outside the "
                f"{data.shape[0]}-byte data buffer")
        return res

    def bind(self, const uint8_t[::1] data not None, const int64_t[::1] offsets not None,
             const uint32_t[::1] lengths not None, const int64_t[::1] timestamps not None,
             uint64_t[::1] selected not None, uint64_t[::1] delivered not None,
             uint8_t[::1] reasons not None):
        """Bind the preallocated arrays `burst` works on."""
        cdef Py_ssize_t n = offsets.shape[0]
        if lengths.shape[0] != n or timestamps.shape[0] != n:
            raise _ConfigError(f"offsets, lengths and timestamps differ in length ({n}, {lengths.shape[0]})")
        if selected.shape[0] < n or delivered.shape[0] < n or reasons.shape[0] < n:
            raise _ConfigError(f"selected, delivered and reasons must each have >= {n} slots")
        self.b_data, self.b_offs, self.b_lens, self.b_ts = data, offsets, lengths, timestamps
        self.b_sel, self.b_dlv, self.b_rsn = selected, delivered, reasons
        self.bcap = n
        self.bound = True

    cpdef Py_ssize_t burst(self, Py_ssize_t n) except -1:
        """Run frames ``[0, n)`` of the bound arrays; returns the frames delivered."""
        cdef Py_ssize_t bad = -1, res = 0
        if not self.bound:
            raise _ConfigError("burst() before bind(): bind the preallocated arrays first")
        if n < 0 or n > self.bcap:
            raise _ConfigError(f"burst of {n} frames; the bound arrays hold 0..{self.bcap}")
        self.nwritten = 0
        if n == 0:
            self._qframes[:] = 0
            return 0
        self._check_binding()
        with nogil:
            bad = _first_out_of_bounds(self.b_data.shape[0], &self.b_offs[0], &self.b_lens[0], n)
            if bad < 0:
                res = self._run(&self.b_data[0] if self.b_data.shape[0] else NULL, &self.b_offs[0],
                                &self.b_lens[0], &self.b_ts[0], n, &self.b_sel[0], &self.b_dlv[0],
                                &self.b_rsn[0])
        if bad >= 0:
            raise _ConfigError(f"frame {bad} lies outside the {self.b_data.shape[0]}-byte data buffer")
        return res

    # -- the kernel -------------------------------------------------------------------------------
    cdef void _fault(self, int32_t domain, uint64_t addr, int kind) noexcept nogil:
        # the fault log is the IOMMU's, shared by every port (kernels of other ports may run in
        # other threads): atomic adds, each fault its own slot
        cdef uint64_t slot = sriov_fetch_add64(self.f_total, 1) % self.f_log
        self.f_dom[slot] = domain
        self.f_addr[slot] = addr
        self.f_kind[slot] = <uint8_t>kind
        if <uint64_t>domain < self.n_fcounts:
            sriov_fetch_add64(&self.f_counts[domain], 1)

    cdef QState* _queue(self, int pool) noexcept nogil:
        """The queue state of a pool's first queue, loaded from its registers once per batch."""
        cdef QState* qs = &self.qs[pool]
        cdef int q
        cdef uint32_t* blk
        cdef uint32_t rxdctl, srrctl, tail
        if qs.state != _Q_UNLOADED:
            return qs
        self.loaded[self.nloaded] = pool
        self.nloaded += 1
        qs.state = _Q_DISABLED
        qs.n_drops = qs.n_packets = qs.n_bytes = qs.n_mcast = 0
        q = <int>(pool * self.t.qpp) if self.t.vt else 0
        qs.q = q
        if q >= _MAX_QUEUES:
            return qs
        blk = &self._regs[0] + (_W_RXQ_LO + q * 16 if q < 64 else _W_RXQ_HI + (q - 64) * 16)
        rxdctl = blk[_QW_RXDCTL]
        if not rxdctl & _RXDCTL_ENABLE:
            return qs
        srrctl = blk[_QW_SRRCTL]
        qs.blk = blk
        qs.base = (<uint64_t>blk[_QW_RDBAH] << 32) | (blk[_QW_RDBAL] & 0xFFFFFF80U)
        qs.count = (blk[_QW_RDLEN] & 0xFFF80) // 16
        qs.head = blk[_QW_RDH] & 0xFFFF
        tail = blk[_QW_RDT] & 0xFFFF
        if qs.count and qs.head < qs.count and tail < qs.count:
            qs.avail = (tail + qs.count - qs.head) % qs.count
        else:
            qs.avail = 0
        qs.bsize = (srrctl & _SRRCTL_BSIZE_MASK) << _SRRCTL_BSIZE_SHIFT
        if qs.bsize == 0:
            qs.bsize = 2048
        qs.strip_on = (rxdctl & _RXDCTL_VME) != 0
        qs.drop_en = (srrctl & _SRRCTL_DROP_EN) != 0 or (self._qde[q] & _QDE_ENABLE) != 0
        if self.t.vt:
            qs.pt, qs.npt, qs.domain = self.pool_pt[pool], self.pool_npt[pool], self.pool_dom[pool]
        else:
            qs.pt, qs.npt, qs.domain = self.pf_pt, self.pf_npt, self.pf_dom
        qs.buf_addr, qs.buf_size, qs.nbuf = self.buf_addr, self.buf_size, self.nbuf
        if self.keep and qs.k_valid and qs.k_base == qs.base and qs.k_count == qs.count and qs.k_domain == qs.domain:
            qs.ring_host = qs.k_ring_host
            qs.win_lo, qs.win_len, qs.win_host = qs.k_win_lo, qs.k_win_len, qs.k_win_host
        else:
            qs.ring_host = _ring_host(qs)
            qs.win_lo = qs.win_len = 0
            qs.win_host = NULL
        qs.arrival = self.arrival + <Py_ssize_t>q * _ARRIVAL_SLOTS
        qs.moved = False
        qs.state = _Q_READY
        return qs

    cdef inline int _copy(self, QState* qs, const uint8_t* f, uint32_t flen, uint32_t plen, bint tagged,
                   uint32_t tci, uint32_t* written, int64_t t) noexcept nogil:
        """One pool's copy into its queue (MODEL.md "Into the ring"): 0 or a DropReason."""
        cdef bint strip
        cdef uint32_t dlen, need, d, idx, length, span, pos, status, nchunks, c, k
        cdef uint64_t daddr, addr
        cdef uint8_t* p = NULL
        cdef uint8_t* dp
        cdef int kind
        cdef bint have_first = False  # the first descriptor's address, already read (addr)
        if qs.state != _Q_READY:
            return QUEUE_DISABLED
        strip = tagged and qs.strip_on
        dlen = plen - _VLAN_HLEN if strip else plen
        need = (dlen + qs.bsize - 1) // qs.bsize
        if qs.avail < need or need > _MAX_FRAME_DESCS:
            return NO_DMA_RESOURCES if qs.drop_en else MISSED
        idx = qs.head
        if need == 1 and qs.ring_host != NULL:
            # The common case: one descriptor in a ring known to be mapped, a buffer inside one page.
            dp = qs.ring_host + <uint64_t>idx * 16
            addr = _ld64le(dp)
            if (addr & _PAGE_MASK) + dlen <= _PAGE_MASK + 1:
                kind = _xlate(qs, addr, dlen, &p)
                if kind:
                    self._fault(qs.domain, addr, kind)
                    return DMA_FAULT
                _deliver(p, f, flen, strip, dlen, self.stream)
                status = _STAT_DD | _STAT_EOP
                k = 0
                if tagged:
                    status |= _STAT_VP
                    k = tci
                _write_back(dp, status, dlen, k)
                qs.arrival[idx] = t
                idx += 1
                if idx == qs.count:
                    idx = 0
                qs.head = idx
                qs.moved = True
                qs.avail -= 1
                written[0] = dlen
                return DELIVERED
            have_first = True  # a buffer across pages: the general way, with the address read
        # Phase 1: translate every descriptor and every page of buffer; the first fault stops the copy.
        # Each descriptor's address is read from guest memory once, and that value alone is
        # translated and written through (a guest CPU may rewrite the descriptor meanwhile).
        nchunks = 0
        for d in range(need):
            daddr = qs.base + <uint64_t>idx * 16
            if qs.ring_host != NULL:
                p = qs.ring_host + <uint64_t>idx * 16
            else:
                kind = _xlate(qs, daddr, 16, &p)
                if kind:
                    self._fault(qs.domain, daddr, kind)
                    return DMA_FAULT
            self.dptr[d] = p
            if not (d == 0 and have_first):
                addr = _ld64le(p)
            length = dlen - d * qs.bsize
            if length > qs.bsize:
                length = qs.bsize
            self.dlen_of[d] = length
            while length:
                span = <uint32_t>(_PAGE_MASK + 1 - (addr & _PAGE_MASK))
                if span > length:
                    span = length
                kind = _xlate(qs, addr, span, &p)
                if kind:
                    self._fault(qs.domain, addr, kind)
                    return DMA_FAULT
                if nchunks == _MAX_CHUNKS:
                    return NO_DMA_RESOURCES if qs.drop_en else MISSED  # unreachable: see _MAX_CHUNKS
                self.cptr[nchunks] = p
                self.clen[nchunks] = span
                nchunks += 1
                addr += span
                length -= span
            idx += 1
            if idx == qs.count:
                idx = 0
        # Phase 2: the frame into the buffers, then the write-back descriptors.
        pos = 0
        for c in range(nchunks):
            _stream(self.cptr[c], f, flen, strip, pos, self.clen[c])
            pos += self.clen[c]
        for d in range(need):
            status = _STAT_DD
            k = 0
            if d == need - 1:
                status |= _STAT_EOP
                if tagged:
                    status |= _STAT_VP
                    k = tci
            _write_back(self.dptr[d], status, self.dlen_of[d], k)
        qs.arrival[qs.head] = t
        qs.head = idx
        qs.moved = True
        qs.avail -= need
        written[0] = dlen
        return DELIVERED

    cdef void _general(self, RunCtx* c, Py_ssize_t i) noexcept nogil:
        """Frame ``i`` of the batch the general way (MODEL.md "Frames at the port", "Pool selection",
        "Into the ring"): every length check, the switch through the flow cache, one copy per pool
        with its drops. `_run`'s fast pass leaves every frame it cannot vouch for to this."""
        cdef L2Tables* t = &self.t
        cdef uint64_t* pc = c.pc
        cdef uint64_t* pool_c = c.pool_c
        cdef int npc = self.npc
        cdef const uint8_t* f = c.data + c.offs[i]
        cdef uint32_t flen = c.lens[i], plen, tci, written = 0
        cdef bint tagged, multicast, broadcast
        cdef uint64_t pools = 0, rem, got, key, fk
        cdef int r, first, pool
        cdef QState* qs
        cdef FlowSlot* fs
        # the port: length checks and the VLAN tag
        if flen < _ETH_HLEN:
            c.sel[i] = c.dlv[i] = 0
            c.rsn[i] = LENGTH_ERROR
            pc[_P_LENGTH] += 1
            return
        tagged = sriov_ld16be(f + 12) == t.vet
        if tagged and flen < _ETH_HLEN + _VLAN_HLEN:
            c.sel[i] = c.dlv[i] = 0
            c.rsn[i] = LENGTH_ERROR
            pc[_P_LENGTH] += 1
            return
        plen = flen if flen >= _ETH_ZLEN else _ETH_ZLEN
        if <uint64_t>plen + _ETH_FCS_LEN > t.max_frame:
            c.sel[i] = c.dlv[i] = 0
            c.rsn[i] = LONG_LENGTH
            pc[_P_LONG] += 1
            return
        tci = sriov_ld16be(f + 14) if tagged else 0
        # the switch (through the batch's flow cache)
        key = sriov_mac_key(f)
        fk = key | (<uint64_t>tagged << 48) | (<uint64_t>(tci & 0xFFF) << 49) | _FLOW_USED
        fs = &self.flow[(fk * 0x9E3779B97F4A7C15ULL) >> 58]
        if fs.tag == fk:
            r = fs.r
            pools = fs.pools
        else:
            r = l2_select(t, f, tagged, tci & 0xFFF, True, &pools)
            fs.tag = fk
            fs.r = r
            fs.pools = pools
            # the fast pass's answer for this flow: its one pool when unicast to exactly one pool
            fs.fast = (<uint8_t>__builtin_ctzll(pools)
                       if r == DELIVERED and pools & (pools - 1) == 0 and not key & 1 else _FLOW_SLOW)
        if r != DELIVERED:
            c.sel[i] = c.dlv[i] = 0
            c.rsn[i] = <uint8_t>r
            pc[_P_VLAN if r == VLAN_FILTERED else _P_NOPOOL] += 1
            return
        pc[_P_CLASSIFIED] += 1
        c.sel[i] = pools
        if f[0] & 1:  # group address: broadcast or multicast
            broadcast = key == _BROADCAST_KEY
            multicast = not broadcast
        else:
            broadcast = multicast = False
        got = 0
        first = DELIVERED
        rem = pools
        while rem:
            pool = __builtin_ctzll(rem)
            rem &= rem - 1
            qs = &self.qs[pool]
            if qs.state == _Q_UNLOADED:
                self._queue(pool)
            r = _copy_fast(qs, f, flen, plen, tagged, tci, &written, self.stream, c.ts[i])
            if r < 0:
                r = self._copy(qs, f, flen, plen, tagged, tci, &written, c.ts[i])
            if r == DELIVERED:
                got |= 1ULL << pool
                qs.n_packets += 1
                qs.n_bytes += written
                qs.n_mcast += multicast
                continue
            qs.n_drops += 1
            if r == NO_DMA_RESOURCES:
                pc[_P_NODMA] += 1
                pool_c[pool * npc + c.ps_dropped] += 1
            elif r == MISSED:
                pc[_P_MISSED] += 1
                pool_c[pool * npc + c.ps_dropped] += 1
            elif r == DMA_FAULT:
                pc[_P_FAULT] += 1
                pool_c[pool * npc + c.ps_fault] += 1
            else:
                pc[_P_QDIS] += 1
                pool_c[pool * npc + c.ps_qdis] += 1
            if first == DELIVERED:
                first = r
        c.dlv[i] = got
        if got:
            c.accepted += 1
            pc[_P_BYTES] += plen
            if broadcast:
                pc[_P_BCAST] += 1
            elif multicast:
                pc[_P_MCAST] += 1
            c.rsn[i] = DELIVERED
        else:
            c.rsn[i] = <uint8_t>first

    cdef Py_ssize_t _run(self, const uint8_t* data, const int64_t* offs, const uint32_t* lens,
                         const int64_t* ts, Py_ssize_t n, uint64_t* sel, uint64_t* dlv,
                         uint8_t* rsn) noexcept nogil:
        cdef L2Tables* t = &self.t
        cdef RunCtx c
        cdef uint64_t* pool_c = &self._pool[0]
        cdef uint64_t* pc = c.pc
        cdef uint32_t* qframes = &self._qframes[0]
        cdef int npc = self.npc
        cdef int ps_copies = self.pool_slot[_Q_COPIES], ps_packets = self.pool_slot[_Q_PACKETS]
        cdef int ps_bytes = self.pool_slot[_Q_BYTES], ps_mcast = self.pool_slot[_Q_MCAST]
        cdef Py_ssize_t i, j, m, k
        cdef const uint8_t* f
        cdef uint32_t flen, plen, dlen, vet, max_frame, strip
        cdef uint64_t fk, wb, addr, off, nfast = 0, fbytes = 0
        cdef int pool
        cdef uint8_t* dp
        cdef uint8_t* p
        cdef QState* qs
        cdef QState* qbase = &self.qs[0]
        cdef FlowSlot* flow = &self.flow[0]
        cdef FlowSlot* fs
        cdef bint stream
        # pass 1's answers per frame of the block: its one pool (or _FLOW_SLOW), the frame, its
        # captured length, and the write-back's tag bits (VP | TCI << 48, 0 untagged)
        cdef uint8_t cls[_BLOCK]
        cdef const uint8_t* cf[_BLOCK]
        cdef uint32_t cflen[_BLOCK]
        cdef uint64_t cwb[_BLOCK]
        c.data, c.offs, c.lens, c.ts, c.sel, c.dlv, c.rsn, c.pool_c = data, offs, lens, ts, sel, dlv, rsn, pool_c
        c.accepted = 0
        c.ps_dropped = self.pool_slot[_Q_DROPPED]
        c.ps_fault = self.pool_slot[_Q_FAULT]
        c.ps_qdis = self.pool_slot[_Q_QDIS]
        memset(c.pc, 0, sizeof(c.pc))
        memset(qframes, 0, _MAX_QUEUES * sizeof(uint32_t))
        if not self.keep:
            l2_refresh(t)
        vet = t.vet
        max_frame = t.max_frame
        # The switch's answer depends only on (destination MAC, tagged, VID) and the tables, which
        # stay as l2_refresh found them for the batch: remembered per batch, asked once per flow.
        if not self.keep:
            memset(self.flow, 0, sizeof(self.flow))
        # Blocks of frames in two passes. Pass 1 classifies with independent loads (lengths, tag,
        # flow-cache probe): a frame whose flow is known to go unicast to one pool gets that pool.
        # Pass 2, in frame order, delivers those whose queue is ready with a descriptor and a buffer
        # inside the queue's window, and hands every other frame to `_general` (which redoes it
        # from the start). The fast pass only takes frames whose outcome it knows: the same result
        # as `_general` for each of them (tests/test_rx_fastpaths.py mixes both in blocks).
        i = 0
        while i < n:
            stream = self.stream = _stream_now()
            m = n - i
            if m > self.nblock:
                m = self.nblock
            if i == 0 and m > _FIRST_BLOCK:
                m = _FIRST_BLOCK  # the flow cache starts empty: a short first block fills it
            for j in range(m):
                k = i + j
                flen = lens[k]
                f = data + offs[k]
                cls[j] = _FLOW_SLOW
                if flen < _ETH_HLEN + _VLAN_HLEN:
                    continue  # short frames (length errors and all): _general
                plen = flen if flen >= _ETH_ZLEN else _ETH_ZLEN
                if <uint64_t>plen + _ETH_FCS_LEN > max_frame:
                    continue
                fk = sriov_mac_key(f) | _FLOW_USED
                wb = 0
                if sriov_ld16be(f + 12) == vet:
                    wb = sriov_ld16be(f + 14)
                    fk |= (1ULL << 48) | ((wb & 0xFFF) << 49)
                    wb = (wb << 48) | _STAT_VP
                fs = &flow[(fk * 0x9E3779B97F4A7C15ULL) >> 58]
                if fs.tag == fk:
                    cls[j] = fs.fast
                    cf[j] = f
                    cflen[j] = flen
                    cwb[j] = wb
            for j in range(m):
                pool = cls[j]
                if pool != _FLOW_SLOW:
                    qs = qbase + pool
                    if qs.state == _Q_UNLOADED:  # a flow known from an earlier run: its queue now
                        self._queue(pool)
                    if qs.state == _Q_READY and qs.ring_host != NULL and qs.avail != 0:
                        flen = cflen[j]
                        plen = flen if flen >= _ETH_ZLEN else _ETH_ZLEN
                        wb = cwb[j]
                        strip = <uint32_t>(qs.strip_on and wb != 0)
                        dlen = plen - (strip << 2)  # the tag's 4 bytes go when stripped
                        if dlen <= qs.bsize:
                            dp = qs.ring_host + <uint64_t>qs.head * 16
                            addr = _ld64le(dp)
                            off = addr - qs.win_lo
                            if not (off < qs.win_len and qs.win_len - off >= dlen):
                                if _find_window(qs, addr) == 0:
                                    off = addr - qs.win_lo
                                if not (off < qs.win_len and qs.win_len - off >= dlen):
                                    self._general(&c, i + j)
                                    continue
                            p = qs.win_host + off
                            f = cf[j]
                            # a one-line frame inline (what _deliver does first); anything
                            # else out of line, so this loop stays small
                            if not _one_line(p, f, flen, strip, dlen, stream):
                                _deliver_any(p, f, flen, strip, dlen, stream)
                            sriov_wb16w(dp, wb | _STAT_DD | _STAT_EOP | (<uint64_t>(dlen & 0xFFFF) << 32))
                            qs.arrival[qs.head] = ts[i + j]
                            qs.head += 1
                            if qs.head == qs.count:
                                qs.head = 0
                            qs.avail -= 1
                            qs.moved = True
                            qs.n_packets += 1
                            qs.n_bytes += dlen
                            k = i + j
                            sel[k] = dlv[k] = 1ULL << pool
                            rsn[k] = DELIVERED
                            nfast += 1
                            fbytes += plen
                            continue
                self._general(&c, i + j)
            i += m
        c.accepted += nfast
        pc[_P_CLASSIFIED] += nfast
        pc[_P_BYTES] += fbytes
        # the heads the hardware advanced, the queues written to, the queue states back to "not loaded"
        self.nwritten = 0
        for k in range(self.nloaded):
            pool = self.loaded[k]
            qs = &self.qs[pool]
            pool_c[pool * npc + ps_copies] += qs.n_packets + qs.n_drops
            pc[_P_COPIES] += qs.n_packets + qs.n_drops
            if qs.state == _Q_READY and qs.moved:
                qs.blk[_QW_RDH] = qs.head
                qframes[qs.q] += <uint32_t>qs.n_packets
                pool_c[pool * npc + ps_packets] += qs.n_packets
                pool_c[pool * npc + ps_bytes] += qs.n_bytes
                pool_c[pool * npc + ps_mcast] += qs.n_mcast
                if qs.n_packets:
                    self.written[self.nwritten] = qs.q
                    self.nwritten += 1
            qs.k_valid = qs.state == _Q_READY
            if qs.k_valid:
                qs.k_base, qs.k_count, qs.k_domain = qs.base, qs.count, qs.domain
                qs.k_ring_host = qs.ring_host
                qs.k_win_lo, qs.k_win_len, qs.k_win_host = qs.win_lo, qs.win_len, qs.win_host
            qs.state = _Q_UNLOADED
        self.nloaded = 0
        self.keep = False
        _sort_queues(self.written, self.nwritten)
        pc[_P_IN] = <uint64_t>n
        pc[_P_PACKETS] = <uint64_t>c.accepted
        for k in range(_P_N):
            self._port[self.port_slot[k]] += pc[k]
        sriov_store_fence()  # the batch's streaming stores are done before anyone reads the rings
        return c.accepted


def rx_harvest(const uint32_t[:, ::1] ring not None, const uint64_t[::1] bufs not None, Py_ssize_t ntc,
               Py_ssize_t budget, int64_t[::1] offsets not None, uint32_t[::1] lengths not None,
               uint16_t[::1] vlans not None):
    """The driver's scan of a receive ring (ixgbevf_clean_rx_irq): completed frames from next_to_clean.

    ``ring`` is the descriptor ring as (count, 4) little-endian words; ``bufs[d]`` the buffer address
    of descriptor d. Takes descriptors while DD is set (at most count - 1), groups them into frames
    by EOP, stops after ``budget`` frames or before a frame not yet complete. Writes per frame the
    first buffer's address, the total length and the VLAN tag (when VP) into the output arrays.
    Returns ``(frames, descriptors used, index of the frame whose buffers wrap round the ring or -1)``.
    """
    cdef Py_ssize_t count = ring.shape[0]
    cdef Py_ssize_t frames = 0, used = 0, scanned = 0, d, first = ntc, wrap = -1
    cdef uint32_t status, word3, total = 0
    if ring.shape[1] != 4 or bufs.shape[0] != count:
        raise _ConfigError("ring must be (count, 4) words with one buffer address per descriptor")
    if not 0 <= ntc < count or budget < 0:
        raise _ConfigError(f"next_to_clean {ntc} outside the {count}-descriptor ring, or negative budget")
    if offsets.shape[0] < budget or lengths.shape[0] < budget or vlans.shape[0] < budget:
        raise _ConfigError(f"output arrays must hold the budget ({budget}) frames")
    with nogil:
        d = ntc
        while frames < budget and scanned < count - 1:
            status = ring[d, 2]
            if not status & _STAT_DD:
                break
            word3 = ring[d, 3]
            total += word3 & 0xFFFF
            scanned += 1
            if status & _STAT_EOP:
                offsets[frames] = <int64_t>bufs[first]
                lengths[frames] = total
                vlans[frames] = <uint16_t>(word3 >> 16) if status & _STAT_VP else 0
                if d < first:
                    wrap = frames
                frames += 1
                used = scanned
                total = 0
                first = d + 1 if d + 1 < count else 0
            d += 1
            if d == count:
                d = 0
    return frames, used, wrap


@cython.final
cdef class RxRingCore:
    """The driver's per-poll ring work, bound once to one ring's arrays (ixgbevf_alloc_rx_buffers +
    ixgbevf_clean_rx_irq's scan). Twin: ``sriov.golden.rx.RxRingCore``.

    ``ring``: the descriptor ring as (count, 4) little-endian words (written by `repost`);
    ``bufs[d]``: descriptor d's buffer address; ``offsets``/``lengths``/``vlans``/``timestamps``:
    `harvest`'s outputs (count slots each; a frame's timestamp is its arrival time, from the
    device's per-descriptor table bound with `bind_arrivals`, else 0). Binding once is the
    point: a per-call function re-acquires seven buffers, which cost more than the work of a
    64-frame poll.
    """

    cdef uint32_t[:, ::1] ring
    cdef const uint64_t[::1] bufs
    cdef int64_t[::1] offsets
    cdef uint32_t[::1] lengths
    cdef uint16_t[::1] vlans
    cdef int64_t[::1] timestamps
    cdef object _arrival_keep
    cdef const int64_t* arrival  # the device's arrival time per descriptor of this queue, or NULL
    cdef readonly Py_ssize_t count
    cdef readonly uint64_t last_bytes  # frame bytes the last harvest took (NAPI's byte count)
    # the tail register's plain-storage slot (see bind_tail): regs[word] while regs[guard_word] == guard
    cdef uint32_t[::1] t_regs
    cdef bint t_bound
    cdef Py_ssize_t t_word, t_guard_word
    cdef uint32_t t_guard

    def __init__(self, uint32_t[:, ::1] ring not None, const uint64_t[::1] bufs not None,
                 int64_t[::1] offsets not None, uint32_t[::1] lengths not None,
                 uint16_t[::1] vlans not None, int64_t[::1] timestamps=None):
        cdef Py_ssize_t count = ring.shape[0]
        if timestamps is None:
            timestamps = _np.zeros(count, _np.int64)
        if ring.shape[1] != 4 or bufs.shape[0] != count or count < 2:
            raise _ConfigError("ring must be (count >= 2, 4) words with one buffer address per descriptor")
        if (offsets.shape[0] < count or lengths.shape[0] < count or vlans.shape[0] < count
                or timestamps.shape[0] < count):
            raise _ConfigError(f"output arrays must hold {count} frames (the ring's size)")
        self.ring, self.bufs = ring, bufs
        self.offsets, self.lengths, self.vlans, self.timestamps = offsets, lengths, vlans, timestamps
        self.count = count

    def bind_arrivals(self, arrivals):
        """The device's arrival time per descriptor of this ring's queue (``arrivals[d]`` for the
        frame starting at descriptor d; `Device82599.rx_arrivals`), or None: timestamps 0."""
        cdef const int64_t[::1] mv
        if arrivals is None:
            self._arrival_keep = None
            self.arrival = NULL
            return
        mv = arrivals
        if mv.shape[0] < self.count:
            raise _ConfigError(f"arrivals must hold {self.count} descriptors, got {mv.shape[0]}")
        self._arrival_keep = arrivals
        self.arrival = &mv[0]

    def bind_tail(self, regs, Py_ssize_t word=-1, Py_ssize_t guard_word=-1, uint32_t guard=0):
        """Where the ring's tail write may go straight (`Device82599.plain_register`): ``regs[word]``
        while ``regs[guard_word] == guard``. ``regs`` None: no such slot (`cycle` then asks the
        caller to write the tail)."""
        cdef uint32_t[::1] mv
        self.t_bound = False
        if regs is None:
            return
        mv = regs
        if not (0 <= word < mv.shape[0] and 0 <= guard_word < mv.shape[0]):
            raise _ConfigError(f"tail slot {word} / guard {guard_word} outside the {mv.shape[0]}-word registers")
        self.t_regs, self.t_word, self.t_guard_word, self.t_guard = mv, word, guard_word, guard
        self.t_bound = True

    cpdef bint tail_store(self, uint32_t value):
        """Write the tail through the bound slot; False (nothing written) when unbound or stale."""
        return self._tail(value)

    def cycle(self, Py_ssize_t ntu, Py_ssize_t ntc, Py_ssize_t budget):
        """One driver poll: re-post the buffers before ``ntc`` (from ``ntu``), write the tail through
        the bound slot, then `harvest` from ``ntc``. Returns ``(next_to_use, tail_unwritten, frames,
        descriptors used, wrapping frame or -1)``; ``tail_unwritten``: the tail moved but the slot is
        unbound or its guard failed, so the caller writes it (``fn.write32``)."""
        cdef Py_ssize_t count = self.count, stop, frames, used = 0, wrap = -1
        cdef uint64_t nbytes = 0
        cdef bint unwritten = False
        if not (0 <= ntu < count and 0 <= ntc < count):
            raise _ConfigError(f"next_to_use {ntu} / next_to_clean {ntc} outside the {count}-descriptor ring")
        if budget < 0:
            raise _ConfigError(f"negative budget {budget}")
        stop = ntc - 1 if ntc > 0 else count - 1
        # one GIL release for the whole poll: with several threads polling, each release is a
        # chance for the GIL to change hands, and a hand-over costs more than this work
        with nogil:
            if stop != ntu:
                ntu = self._repost(ntu, stop)
                unwritten = not self._tail(<uint32_t>ntu)
            frames = self._scan_nogil(ntc, budget, &used, &wrap, &nbytes)
        self.last_bytes = nbytes
        return ntu, unwritten, frames, used, wrap

    def recycle(self, Py_ssize_t ntu, Py_ssize_t ntc, Py_ssize_t budget):
        """A driver that drops everything (XDP_DROP-style): re-post the buffers before ``ntc``,
        scan from ``ntc`` (at most ``budget`` frames), re-post the buffers of the frames just
        taken, write the tail once. Same result as `cycle` followed by ``repost`` up to the new
        next_to_clean and a tail write. Returns ``(next_to_use, tail_unwritten, frames, descriptors
        used, wrapping frame or -1)``."""
        cdef Recycle r
        cdef Py_ssize_t count = self.count
        if not (0 <= ntu < count and 0 <= ntc < count):
            raise _ConfigError(f"next_to_use {ntu} / next_to_clean {ntc} outside the {count}-descriptor ring")
        if budget < 0:
            raise _ConfigError(f"negative budget {budget}")
        r.ntu, r.ntc, r.limit = ntu, ntc, budget
        with nogil:
            self._recycle(&r)
        self.last_bytes = r.nbytes
        return r.ntu, r.unwritten, r.frames, r.used, r.wrap

    cdef void _recycle(self, Recycle* r) noexcept nogil:
        """`recycle`'s work (indices already checked): re-post, scan, re-post, one tail store."""
        cdef Py_ssize_t count = self.count, start = r.ntu, stop
        r.used = 0
        r.wrap = -1
        r.nbytes = 0
        r.unwritten = False
        stop = r.ntc - 1 if r.ntc > 0 else count - 1
        if stop != r.ntu:
            r.ntu = self._repost(r.ntu, stop)
        r.frames = self._scan_nogil(r.ntc, r.limit, &r.used, &r.wrap, &r.nbytes)
        stop = (r.ntc + r.used) % count
        stop = stop - 1 if stop > 0 else count - 1
        if stop != r.ntu:
            r.ntu = self._repost(r.ntu, stop)
        if r.ntu != start:
            r.unwritten = not self._tail(<uint32_t>r.ntu)

    cdef inline bint _tail(self, uint32_t value) noexcept nogil:
        if self.t_bound and self.t_regs[self.t_guard_word] == self.t_guard:
            self.t_regs[self.t_word] = value
            return True
        return False

    cdef Py_ssize_t _repost(self, Py_ssize_t d, Py_ssize_t stop) noexcept nogil:
        """`repost`'s loop (``d`` and ``stop`` already checked): raw pointers (the arrays are
        C-contiguous, bound once), and no wrap test per descriptor."""
        cdef Py_ssize_t count = self.count, end
        cdef uint32_t* ring = &self.ring[0, 0]
        cdef const uint64_t* bufs = &self.bufs[0]
        cdef uint32_t* w
        cdef uint64_t addr
        while d != stop:
            end = stop if stop > d else count
            while d < end:
                addr = bufs[d]
                w = ring + 4 * d
                w[0] = <uint32_t>(addr & 0xFFFFFFFFU)
                w[1] = <uint32_t>(addr >> 32)
                w[2] = 0
                w[3] = 0
                d += 1
            if d == count:
                d = 0
        return stop

    cpdef Py_ssize_t repost(self, Py_ssize_t start, Py_ssize_t stop) except -1:
        """Post descriptors ``start .. stop-1`` in ring order (read format: packet address = the
        buffer, header address 0, which clears DD); returns ``stop`` (the new next_to_use)."""
        cdef Py_ssize_t count = self.count
        if not (0 <= start < count and 0 <= stop < count):
            raise _ConfigError(f"repost({start}, {stop}) outside the {count}-descriptor ring")
        with nogil:
            self._repost(start, stop)
        return stop

    def harvest(self, Py_ssize_t ntc, Py_ssize_t budget):
        """`rx_harvest` on the bound arrays: ``(frames, descriptors used, wrapping frame or -1)``."""
        cdef Py_ssize_t frames, used = 0, wrap = -1
        if not 0 <= ntc < self.count or budget < 0:
            raise _ConfigError(f"next_to_clean {ntc} outside the {self.count}-descriptor ring, or negative budget")
        frames = self._scan(ntc, budget, &used, &wrap)
        return frames, used, wrap

    cdef Py_ssize_t _scan(self, Py_ssize_t ntc, Py_ssize_t budget, Py_ssize_t* used_out,
                          Py_ssize_t* wrap_out) noexcept:
        """The scan of `harvest` (``ntc`` and ``budget`` already checked); sets ``last_bytes``."""
        cdef Py_ssize_t frames
        cdef uint64_t nbytes = 0
        with nogil:
            frames = self._scan_nogil(ntc, budget, used_out, wrap_out, &nbytes)
        self.last_bytes = nbytes
        return frames

    cdef Py_ssize_t _scan_nogil(self, Py_ssize_t ntc, Py_ssize_t budget, Py_ssize_t* used_out,
                                Py_ssize_t* wrap_out, uint64_t* nbytes_out) noexcept nogil:
        # raw pointers to the bound (C-contiguous) arrays: the memoryviews' fields are not
        # reloaded after every store into the output arrays
        cdef Py_ssize_t count = self.count
        cdef Py_ssize_t frames = 0, used = 0, scanned = 0, d, first = ntc, wrap = -1
        cdef uint32_t status, word3, total
        cdef uint64_t nbytes = 0
        cdef const uint32_t* ring = &self.ring[0, 0]
        cdef const uint64_t* bufs = &self.bufs[0]
        cdef int64_t* offsets = &self.offsets[0]
        cdef uint32_t* lengths = &self.lengths[0]
        cdef uint16_t* vlans = &self.vlans[0]
        cdef int64_t* tsout = &self.timestamps[0]
        cdef const int64_t* arrival = self.arrival
        cdef Py_ssize_t limit = count - 1, seg, k
        cdef bint stop = False
        if budget > count:
            budget = count
        d = ntc
        while frames < budget and scanned < limit:
            status = ring[4 * d + 2]
            if status & (_STAT_DD | _STAT_EOP) == _STAT_DD | _STAT_EOP:
                # a run of frames in one descriptor each (the common case), up to the budget, the
                # scan limit or the end of the ring: one bound for the run, few live values
                seg = budget - frames
                if seg > limit - scanned:
                    seg = limit - scanned
                if seg > count - d:
                    seg = count - d
                k = 0
                while k < seg:
                    status = ring[4 * (d + k) + 2]
                    if status & (_STAT_DD | _STAT_EOP) != _STAT_DD | _STAT_EOP:
                        break
                    word3 = ring[4 * (d + k) + 3]
                    offsets[frames + k] = <int64_t>bufs[d + k]
                    lengths[frames + k] = word3 & 0xFFFF
                    vlans[frames + k] = <uint16_t>(word3 >> 16) if status & _STAT_VP else 0
                    nbytes += word3 & 0xFFFF
                    tsout[frames + k] = arrival[d + k] if arrival != NULL else 0
                    k += 1
                frames += k
                scanned += k
                used = scanned
                d += k
                if d == count:
                    d = 0
                continue
            # a frame over several descriptors: up to its EOP, or stop where it is not complete
            first = d
            total = 0
            while True:
                if not status & _STAT_DD:
                    stop = True
                    break
                word3 = ring[4 * d + 3]
                total += word3 & 0xFFFF
                scanned += 1
                if status & _STAT_EOP:
                    offsets[frames] = <int64_t>bufs[first]
                    lengths[frames] = total
                    vlans[frames] = <uint16_t>(word3 >> 16) if status & _STAT_VP else 0
                    tsout[frames] = arrival[first] if arrival != NULL else 0
                    if d < first:
                        wrap = frames
                    frames += 1
                    used = scanned
                    nbytes += total
                    d += 1
                    if d == count:
                        d = 0
                    break
                d += 1
                if d == count:
                    d = 0
                if scanned >= limit:
                    stop = True
                    break
                status = ring[4 * d + 2]
            if stop:
                break
        nbytes_out[0] = nbytes
        used_out[0] = used
        wrap_out[0] = wrap
        return frames
