# The transmit flow (MODEL.md "Transmit", spec §5.8): TX descriptor chains fetched through the owning
# function's IOMMU domain -> VFTE, length checks -> MAC/VLAN anti-spoofing -> port VLAN insertion
# (VMVIR) -> the VEB (the receive L2 switch minus the source pool) -> local pools through the receive
# DMA path (RxKernel._copy) and/or the wire (a preallocated output batch) -> DD / head write-back, TDH.
# GIL released for the whole run; nothing allocated per frame; every descriptor, buffer address and
# register value is translated or bounds-checked before use. Guest memory is read once: each
# descriptor into a snapshot, each frame byte into the kernel's own buffer, which alone is
# checked and forwarded (a guest CPU may rewrite either while the kernel runs).
# Decisions: sriov/golden/tx.py (the twin).

cdef Py_ssize_t _W_TXQ = _R.TX_QUEUE_BASE // 4
cdef Py_ssize_t _QW_TDBAL = _R.Q_TDBAL // 4
cdef Py_ssize_t _QW_TDBAH = _R.Q_TDBAH // 4
cdef Py_ssize_t _QW_TDLEN = _R.Q_TDLEN // 4
cdef Py_ssize_t _QW_TDH = _R.Q_TDH // 4
cdef Py_ssize_t _QW_TDT = _R.Q_TDT // 4
cdef Py_ssize_t _QW_TXDCTL = _R.Q_TXDCTL // 4
cdef Py_ssize_t _QW_TDWBAL = _R.Q_TDWBAL // 4
cdef Py_ssize_t _QW_TDWBAH = _R.Q_TDWBAH // 4
cdef Py_ssize_t _W_VFTE = _R.VFTE(0) // 4
cdef Py_ssize_t _W_VMECM = _R.VMECM(0) // 4
cdef Py_ssize_t _W_SSVPC = _R.SSVPC // 4
cdef Py_ssize_t _W_PFVFSPOOF = _R.PFVFSPOOF(0) // 4
cdef Py_ssize_t _W_VMVIR = _R.VMVIR(0) // 4
cdef Py_ssize_t _W_PFDTXGSWC = _R.PFDTXGSWC // 4
# Per-frame constants as C constants (folded into the instructions, not loaded from module variables
# per frame), checked against sriov.hw.regs at import.
cdef extern from *:
    """
    #define SRIOV_TXDCTL_ENABLE 0x02000000u
    #define SRIOV_DCMD_EOP 0x01000000u
    #define SRIOV_DCMD_RS 0x08000000u
    #define SRIOV_DCMD_DEXT 0x20000000u
    #define SRIOV_DTYP_MASK 0x00F00000u
    #define SRIOV_DTYP_CTXT 0x00200000u
    #define SRIOV_DTALEN_MASK 0x0000FFFFu
    #define SRIOV_TXD_DD 0x1u
    #define SRIOV_TXD_STATUS 12
    #define SRIOV_HEAD_WB_EN 0x1u
    #define SRIOV_VT_LBEN 0x1u
    #define SRIOV_VLANA_MASK 0xC0000000u
    #define SRIOV_VLANA_DEFAULT 0x40000000u
    #define SRIOV_SPOOF_VLAN_SHIFT 8
    #define SRIOV_TX_MAX_BYTES 15868ULL
    #define SRIOV_TX_MAX_DESCS 40u
    #define SRIOV_TPID_8021Q 0x8100u
    """
    const uint32_t _TXDCTL_ENABLE "SRIOV_TXDCTL_ENABLE"
    const uint32_t _DCMD_EOP "SRIOV_DCMD_EOP"
    const uint32_t _DCMD_RS "SRIOV_DCMD_RS"
    const uint32_t _DCMD_DEXT "SRIOV_DCMD_DEXT"
    const uint32_t _DTYP_MASK "SRIOV_DTYP_MASK"
    const uint32_t _DTYP_CTXT "SRIOV_DTYP_CTXT"
    const uint32_t _DTALEN_MASK "SRIOV_DTALEN_MASK"
    const uint32_t _TXD_DD "SRIOV_TXD_DD"
    const int _TXD_STATUS "SRIOV_TXD_STATUS"
    const uint32_t _HEAD_WB_EN "SRIOV_HEAD_WB_EN"
    const uint32_t _VT_LBEN "SRIOV_VT_LBEN"
    const uint32_t _VLANA_MASK "SRIOV_VLANA_MASK"
    const uint32_t _VLANA_DEFAULT "SRIOV_VLANA_DEFAULT"
    const int _SPOOF_VLAN_SHIFT "SRIOV_SPOOF_VLAN_SHIFT"
    const uint64_t _TX_MAX_BYTES "SRIOV_TX_MAX_BYTES"
    const uint32_t _TX_MAX_DESCS "SRIOV_TX_MAX_DESCS"
    const uint32_t _TPID_8021Q "SRIOV_TPID_8021Q"

_TXD_BASE_CMD_VALUE = _R.ADVTXD_DTYP_DATA | _R.ADVTXD_DCMD_DEXT | _R.ADVTXD_DCMD_IFCS
cdef uint32_t _TXD_BASE_CMD = _TXD_BASE_CMD_VALUE
cdef int _TXD_PAYLEN_SHIFT = _R.ADVTXD_PAYLEN_SHIFT

if ((_TXDCTL_ENABLE, _DCMD_EOP, _DCMD_RS, _DCMD_DEXT, _DTYP_MASK, _DTYP_CTXT, _DTALEN_MASK, _TXD_DD,
     _TXD_STATUS, _HEAD_WB_EN, _VT_LBEN, _VLANA_MASK, _VLANA_DEFAULT, _SPOOF_VLAN_SHIFT, _TX_MAX_BYTES,
     _TX_MAX_DESCS, _TPID_8021Q)
        != (_R.TXDCTL_ENABLE, _R.ADVTXD_DCMD_EOP, _R.ADVTXD_DCMD_RS, _R.ADVTXD_DCMD_DEXT, _R.ADVTXD_DTYP_MASK,
            _R.ADVTXD_DTYP_CTXT, _R.ADVTXD_DTALEN_MASK, _R.TXD_STAT_DD, _R.ADVTXD_STAT_DD_OFFSET,
            _R.TDWBAL_HEAD_WB_ENABLE, _R.PFDTXGSWC_VT_LBEN, _R.VMVIR_VLANA_MASK, _R.VMVIR_VLANA_DEFAULT,
            _R.SPOOF_VLANAS_SHIFT, _R.TX_MAX_FRAME_SIZE - _R.ETH_FCS_LEN, _R.TX_MAX_DATA_DESCS,
            _R.ETH_P_8021Q)):
    raise ImportError("sriov._fastpath: TX register constants in sriov.hw.regs changed; "
                      "update the constants of _fp_tx.pxi")

cdef enum:
    _TX_DESC_SLOTS = 40       # = TX_MAX_DATA_DESCS (checked at import below)
    _TX_SCRATCH = 16384       # >= the largest frame (15868 bytes) + an inserted tag
    _TX_RS_WORDS = 1024       # RS bits of a chain: one per descriptor of the largest ring (65528)
    _TXV_SENT = 0
    _TXV_DISABLED = 1
    _TXV_LENGTH = 2
    _TXV_DMA = 3
    _TXV_SPOOFED = 4
    _TXV_WAIT = 5

if _R.TX_MAX_DATA_DESCS != _TX_DESC_SLOTS or _R.TX_MAX_FRAME_SIZE + _R.VLAN_HLEN > _TX_SCRATCH:
    raise ImportError("sriov._fastpath: TX limits in sriov.hw.regs changed; update _fp_tx.pxi")

# port counter slots the kernel adds to, in this order (names from sriov/hw/counters.py)
_TX_PORT_SLOTS = ("tx_posted", "tx_packets", "tx_bytes", "tx_dropped", "tx_disabled", "tx_length_errors",
                  "tx_dma_faults", "tx_spoofed", "tx_wire_packets", "tx_local_packets", "tx_flooded",
                  "tx_local_copies", "tx_ring_faults", "rx_pool_copies", "rx_no_dma_resources",
                  "rx_dma_faults", "rx_queue_disabled", "rx_missed_errors")
cdef enum:
    _TP_POSTED = 0
    _TP_PACKETS
    _TP_BYTES
    _TP_DROPPED
    _TP_DISABLED
    _TP_LENGTH
    _TP_DMA
    _TP_SPOOFED
    _TP_WIRE
    _TP_LOCAL
    _TP_FLOODED
    _TP_LCOPIES
    _TP_RING
    _TP_RX_COPIES
    _TP_RX_NODMA
    _TP_RX_FAULT
    _TP_RX_QDIS
    _TP_RX_MISSED
    _TP_N
_TX_POOL_SLOTS = ("tx_posted", "tx_packets", "tx_bytes", "tx_dropped", "tx_disabled", "tx_length_errors",
                  "tx_dma_faults", "tx_spoofed", "tx_ring_faults", "rx_copies", "rx_packets", "rx_bytes",
                  "rx_multicast", "rx_dropped", "rx_dma_faults", "rx_queue_disabled")
cdef enum:
    _TQ_POSTED = 0
    _TQ_PACKETS
    _TQ_BYTES
    _TQ_DROPPED
    _TQ_DISABLED
    _TQ_LENGTH
    _TQ_DMA
    _TQ_SPOOFED
    _TQ_RING
    _TQ_RX_COPIES
    _TQ_RX_PACKETS
    _TQ_RX_BYTES
    _TQ_RX_MCAST
    _TQ_RX_DROPPED
    _TQ_RX_FAULT
    _TQ_RX_QDIS
    _TQ_N


cdef inline uint32_t _ld32le(const uint8_t* p) noexcept nogil:
    return <uint32_t>p[0] | (<uint32_t>p[1] << 8) | (<uint32_t>p[2] << 16) | (<uint32_t>p[3] << 24)


cdef inline bint _is_context(uint32_t cmd) noexcept nogil:
    return (cmd & _DCMD_DEXT) != 0 and (cmd & _DTYP_MASK) == _DTYP_CTXT


cdef inline int _xlate_read(const QState* qs, uint64_t iova, uint32_t span, const uint8_t** out) noexcept nogil:
    """Host pointer for a read of ``span`` bytes inside one page of ``iova``, or a fault kind."""
    cdef uint64_t page = iova >> _PAGE_SHIFT
    cdef uint64_t pte, bid, off
    if page >= qs.npt:
        return _FAULT_NOT_MAPPED
    pte = qs.pt[page]
    if not pte & _PTE_VALID:
        return _FAULT_NOT_MAPPED
    bid = (pte >> _PTE_BUFFER_SHIFT) & _PTE_BUFFER_MASK
    off = (pte & _PTE_OFFSET_MASK) + (iova & _PAGE_MASK)
    if bid >= qs.nbuf or off + span > qs.buf_size[bid]:
        return _FAULT_NOT_MAPPED
    out[0] = <const uint8_t*><uintptr_t>(qs.buf_addr[bid] + off)
    return 0


@cython.final
cdef class TxKernel:
    """The transmit flow of one port (compiled twin of ``sriov.golden.tx.TxKernel``).

    ``bind_output(...)`` gives it the wire's output arrays once; ``run(first, last, now_ns)`` sends
    what TX queues ``first..last`` hold. ``rx`` is the port's `RxKernel`: the VEB delivers through
    its receive DMA path. After a run ``rx_queue_frames[q]`` holds the frames delivered locally to PF
    RX queue ``q`` and ``tx_queue_frames[q]`` the frames completed on PF TX queue ``q``.
    """

    cdef object device
    cdef RxKernel rx
    cdef L2Tables t
    cdef uint32_t* regs
    cdef uint32_t[::1] _regs
    cdef uint64_t[::1] _port
    cdef uint64_t[::1] _pool
    cdef int port_slot[_TP_N]
    cdef int pool_slot[_TQ_N]
    cdef int npc
    cdef readonly object rx_queue_frames
    cdef readonly object tx_queue_frames
    cdef readonly list tx_done      # after a run: the PF TX queues that completed frames, ascending
    cdef uint32_t[::1] _rxq
    cdef uint32_t[::1] _txq
    # the wire's output arrays
    cdef bint bound
    cdef uint8_t[::1] o_data
    cdef int64_t[::1] o_offs
    cdef uint32_t[::1] o_lens
    cdef int64_t[::1] o_ts
    cdef int64_t[::1] o_fill
    # per-run state
    cdef uint64_t vfte
    cdef uint64_t vmecm
    cdef uint64_t vfre
    cdef bint veb
    cdef int64_t now
    # the chain being sent, as read from guest memory once (a guest CPU may rewrite its descriptors
    # and buffers while the device works: every check and copy uses these snapshots, never a
    # second read): the descriptors' host pointers (for the write-back), buffer addresses and
    # command words of its first _TX_DESC_SLOTS descriptors, and the RS bit of every descriptor
    cdef uint8_t* dptr[_TX_DESC_SLOTS]
    cdef uint64_t daddr[_TX_DESC_SLOTS]
    cdef uint32_t dcmd[_TX_DESC_SLOTS]
    cdef uint64_t rs_bits[_TX_RS_WORDS]
    cdef uint64_t pc[_TP_N]         # port counters of this run, added to the device's at its end
    cdef uint64_t* poolc            # the device's pool counters (pool p's slot s at p * npc + s)
    cdef bint fc_valid              # the flow cache (see _frame): valid for this run only
    cdef int fc_pool
    cdef uint64_t fc_k0
    cdef uint64_t fc_k1
    cdef uint64_t fc_pools
    cdef int ps[_TQ_N]              # pool counter slots
    # forwarded frames and local copies of this run, per pool, added to the counters at its end
    # (plain 2-D arrays: cheaper per frame than the slot-indirect counter update)
    cdef uint64_t sacc[64][3]       # source pool: posted+sent, packets, bytes
    cdef uint64_t dacc[64][4]       # destination pool: copies, delivered, bytes, multicast
    cdef uint8_t scratch[_TX_SCRATCH]

    def __init__(self, device, RxKernel rx not None):
        cdef int i
        self.device = device
        self.rx = rx
        self._regs = device.regs
        self.regs = &self._regs[0]
        self.t.regs = self.regs
        self.t.built = False
        self._port = device.state.port_counters
        self._pool = device.state.pool_counters.reshape(-1)
        if not _np.shares_memory(self._pool, device.state.pool_counters):
            raise _ConfigError("pool counters must be one contiguous array")
        self.npc = len(_C.POOL_COUNTERS)
        for i, name in enumerate(_TX_PORT_SLOTS):
            self.port_slot[i] = _C.PORT[name]
        for i, name in enumerate(_TX_POOL_SLOTS):
            self.pool_slot[i] = _C.POOL[name]
            self.ps[i] = _C.POOL[name]
        self.rx_queue_frames = _np.zeros(_MAX_QUEUES, dtype=_np.uint32)
        self.tx_queue_frames = _np.zeros(_MAX_QUEUES, dtype=_np.uint32)
        self._rxq = self.rx_queue_frames
        self._txq = self.tx_queue_frames
        self.bound = False
        self.tx_done = []

    def bind_output(self, uint8_t[::1] data not None, int64_t[::1] offsets not None,
                    uint32_t[::1] lengths not None, int64_t[::1] timestamps not None,
                    int64_t[::1] fill not None):
        """The wire's output arrays; ``fill`` = [frames, bytes, full] is read and advanced per run."""
        if offsets.shape[0] != lengths.shape[0] or offsets.shape[0] != timestamps.shape[0]:
            raise _ConfigError(
                f"offsets, lengths and timestamps must have the same slots ({offsets.shape[0]}, "
                f"{lengths.shape[0]}, {timestamps.shape[0]})")
        if fill.shape[0] < 3:
            raise _ConfigError(f"fill must have 3 slots (frames, bytes, full), got {fill.shape[0]}")
        self.o_data, self.o_offs, self.o_lens, self.o_ts, self.o_fill = data, offsets, lengths, timestamps, fill
        self.bound = True

    cpdef Py_ssize_t run(self, int first, int last, int64_t now_ns) except -1:
        """Send what TX queues ``first..last`` hold; returns the frames taken off the rings."""
        cdef Py_ssize_t taken = 0
        cdef int q
        cdef bint full = False
        cdef RxKernel rx = self.rx
        cdef list done
        if not self.bound:
            raise _ConfigError("run() before bind_output(): bind the wire's output arrays first")
        if not (0 <= first <= last < _MAX_QUEUES):
            raise _ConfigError(f"queue range {first}..{last} must satisfy 0 <= first <= last < {_MAX_QUEUES}")
        if not (0 <= self.o_fill[0] <= self.o_offs.shape[0] and 0 <= self.o_fill[1] <= self.o_data.shape[0]):
            raise _ConfigError(
                f"fill ({self.o_fill[0]} frames, {self.o_fill[1]} bytes) lies outside the output arrays "
                f"({self.o_offs.shape[0]} frames, {self.o_data.shape[0]} bytes)")
        rx._check_binding()
        with nogil:
            memset(self.pc, 0, sizeof(self.pc))
            memset(self.sacc, 0, sizeof(self.sacc))
            memset(self.dacc, 0, sizeof(self.dacc))
            self.fc_valid = False
            self.poolc = &self._pool[0]
            self.o_fill[2] = 0
            memset(&self._rxq[0], 0, _MAX_QUEUES * sizeof(uint32_t))
            memset(&self._txq[0], 0, _MAX_QUEUES * sizeof(uint32_t))
            l2_refresh(&rx.t)  # the receive side's queue geometry, for local deliveries
            l2_refresh(&self.t)
            self.vfre = self.t.vfre
            self.t.vfre = 0xFFFFFFFFFFFFFFFFULL  # local pools claim frames even with receive disabled
            self.vfte = _pair64(self.regs, _W_VFTE)
            self.vmecm = _pair64(self.regs, _W_VMECM)
            self.veb = self.t.vt and (self.regs[_W_PFDTXGSWC] & _VT_LBEN) != 0
            self.now = now_ns
            for q in range(first, last + 1):
                taken += self._queue_run(q, &full)
                if full:
                    self.o_fill[2] = 1
                    break
            self._flush_rx()
            self._flush_acc()
            for q in range(_TP_N):
                self._port[self.port_slot[q]] += self.pc[q]
            sriov_store_fence()  # local deliveries may use streaming stores: done before anyone reads
        done = []
        for q in range(first, last + 1):
            if self._txq[q]:
                done.append(q)
        self.tx_done = done
        return taken

    # -- the kernel -------------------------------------------------------------------------------
    cdef void _flush_rx(self) noexcept nogil:
        """The RX heads the local deliveries advanced, and the RX queue states back to "not loaded"."""
        cdef QState* qs
        cdef int k
        for k in range(self.rx.nloaded):
            qs = &self.rx.qs[self.rx.loaded[k]]
            if qs.state == _Q_READY and qs.moved:
                qs.blk[_QW_RDH] = qs.head
            qs.state = _Q_UNLOADED
        self.rx.nloaded = 0

    cdef void _flush_acc(self) noexcept nogil:
        """The run's per-pool accumulators into the pool counters (and their sums into the port's)."""
        cdef int p
        cdef uint64_t* row
        for p in range(64):
            row = self.poolc + p * self.npc
            if self.sacc[p][0]:
                row[self.ps[_TQ_POSTED]] += self.sacc[p][0]
                row[self.ps[_TQ_PACKETS]] += self.sacc[p][1]
                row[self.ps[_TQ_BYTES]] += self.sacc[p][2]
                self.pc[_TP_POSTED] += self.sacc[p][0]
                self.pc[_TP_PACKETS] += self.sacc[p][1]
                self.pc[_TP_BYTES] += self.sacc[p][2]
            if self.dacc[p][0]:
                row[self.ps[_TQ_RX_COPIES]] += self.dacc[p][0]
                row[self.ps[_TQ_RX_PACKETS]] += self.dacc[p][1]
                row[self.ps[_TQ_RX_BYTES]] += self.dacc[p][2]
                row[self.ps[_TQ_RX_MCAST]] += self.dacc[p][3]
                self.pc[_TP_RX_COPIES] += self.dacc[p][0]

    cdef inline void _count(self, int pool, int port_slot, int pool_slot, uint64_t by) noexcept nogil:
        self.pc[port_slot] += by
        if pool_slot >= 0:
            self.poolc[pool * self.npc + self.ps[pool_slot]] += by

    cdef uint8_t* _desc(self, QState* txq, uint32_t idx) noexcept nogil:
        """Descriptor ``idx`` of the ring (already fetched once this run, so it translates), or NULL."""
        cdef uint8_t* dp = NULL
        if txq.ring_host != NULL:
            return txq.ring_host + <uint64_t>idx * 16
        if _xlate(txq, txq.base + <uint64_t>idx * 16, 16, &dp):
            return NULL
        return dp

    cdef Py_ssize_t _queue_run(self, int q, bint* full) noexcept nogil:
        """Every complete frame of TX queue ``q``; sets ``full`` when a frame must wait for wire room."""
        cdef uint32_t* blk = self.regs + _W_TXQ + q * 16
        cdef QState txq
        cdef int pool, kind, v
        cdef uint32_t head, tail, start, d, n, cmd, k, idx
        cdef uint64_t total, daddr
        cdef bint eop, stalled, wb_head
        cdef uint8_t* dp = NULL
        cdef Py_ssize_t taken = 0
        if not blk[_QW_TXDCTL] & _TXDCTL_ENABLE:
            return 0
        pool = <int>(q // self.t.qpp) if self.t.vt else 0
        memset(&txq, 0, sizeof(QState))
        txq.q = q
        txq.base = (<uint64_t>blk[_QW_TDBAH] << 32) | (blk[_QW_TDBAL] & 0xFFFFFF80U)
        txq.count = (blk[_QW_TDLEN] & 0xFFF80) // 16
        head = blk[_QW_TDH] & 0xFFFF
        tail = blk[_QW_TDT] & 0xFFFF
        if txq.count == 0 or head >= txq.count or tail >= txq.count:
            return 0
        if self.t.vt:
            txq.pt, txq.npt, txq.domain = self.rx.pool_pt[pool], self.rx.pool_npt[pool], self.rx.pool_dom[pool]
        else:
            txq.pt, txq.npt, txq.domain = self.rx.pf_pt, self.rx.pf_npt, self.rx.pf_dom
        txq.buf_addr, txq.buf_size, txq.nbuf = self.rx.buf_addr, self.rx.buf_size, self.rx.nbuf
        txq.ring_host = _ring_host(&txq)
        wb_head = (blk[_QW_TDWBAL] & _HEAD_WB_EN) != 0
        start = head
        while head != tail:
            # fetch the chain: descriptors up to EOP
            d = head
            n = 0
            total = 0
            eop = False
            stalled = False
            while d != tail:
                if txq.ring_host != NULL:
                    dp = txq.ring_host + <uint64_t>d * 16
                else:
                    daddr = txq.base + <uint64_t>d * 16
                    kind = _xlate(&txq, daddr, 16, &dp)
                    if kind:
                        self.rx._fault(txq.domain, daddr, kind)
                        self._count(pool, _TP_RING, _TQ_RING, 1)
                        stalled = True
                        break
                # the descriptor's one read: its address and command word, kept for _frame
                cmd = _ld32le(dp + 8)
                if n < _TX_DESC_SLOTS:
                    self.dptr[n] = dp
                    self.daddr[n] = _ld64le(dp)
                    self.dcmd[n] = cmd
                if (n & 63) == 0:
                    self.rs_bits[n >> 6] = 0
                if cmd & _DCMD_RS:
                    self.rs_bits[n >> 6] |= 1ULL << (n & 63)
                n += 1
                d += 1
                if d == txq.count:
                    d = 0
                if _is_context(cmd):
                    continue
                total += cmd & _DTALEN_MASK
                if cmd & _DCMD_EOP:
                    eop = True
                    break
            if stalled or not eop:
                break
            v = self._frame(&txq, pool, n, total)
            if v == _TXV_WAIT:
                full[0] = True
                break
            taken += 1
            if not wb_head:
                idx = head
                for k in range(n):
                    if (self.rs_bits[k >> 6] >> (k & 63)) & 1:
                        dp = self.dptr[k] if k < _TX_DESC_SLOTS else self._desc(&txq, idx)
                        if dp != NULL:
                            _st32le(dp + _TXD_STATUS, _TXD_DD)
                    idx += 1
                    if idx == txq.count:
                        idx = 0
            head = d
        if head != start:
            blk[_QW_TDH] = head
            if wb_head:
                daddr = (<uint64_t>blk[_QW_TDWBAH] << 32) | (blk[_QW_TDWBAL] & 0xFFFFFFFCU)
                kind = _xlate(&txq, daddr, 4, &dp)
                if kind:
                    self.rx._fault(txq.domain, daddr, kind)
                    self._count(pool, _TP_RING, _TQ_RING, 1)
                else:
                    _st32le(dp, head)
        self._txq[q] += <uint32_t>taken
        return taken

    cdef inline int _frame(self, QState* txq, int pool, uint32_t n, uint64_t total) noexcept nogil:
        """One complete chain (``n`` descriptors, ``total`` data bytes, snapshots in ``daddr`` /
        ``dcmd``): its verdict; _TXV_WAIT when it is for the wire and the wire has no room (nothing
        done then)."""
        cdef L2Tables* t = &self.t
        cdef const uint8_t* f = NULL
        cdef const uint8_t* src = NULL
        cdef uint32_t k, cmd, length, span, flen, plen, tci, vmvir, spoof, pos
        cdef uint64_t addr, owners, pools
        cdef int kind, v, r
        cdef bint tagged, multicast, to_wire, hit
        cdef uint64_t k0 = 0, k1 = 0
        cdef uint32_t flen_in
        v = _TXV_SENT
        if t.vt and not (self.vfte >> pool) & 1:
            v = _TXV_DISABLED
        elif n > _TX_MAX_DESCS or total < _ETH_HLEN or total > _TX_MAX_BYTES:
            v = _TXV_LENGTH
        else:
            # the frame's bytes, read through the IOMMU once into the device's own buffer (the
            # FIFO the hardware DMAs into): checked and forwarded from there only, so a guest
            # rewriting its buffer meanwhile changes nothing; lengths and addresses from the
            # descriptor snapshots (their sum, ``total``, fits the scratch buffer)
            addr = self.daddr[0]
            if n == 1 and (addr & _PAGE_MASK) + total <= _PAGE_MASK + 1:
                kind = _xlate_read(txq, addr, <uint32_t>total, &src)
                if kind:
                    self.rx._fault(txq.domain, addr, kind)
                    v = _TXV_DMA
                else:
                    memcpy(self.scratch, src, <size_t>total)
            else:
                pos = 0
                for k in range(n):
                    cmd = self.dcmd[k]
                    if _is_context(cmd):
                        continue
                    length = cmd & _DTALEN_MASK
                    addr = self.daddr[k]
                    while length:
                        span = <uint32_t>(_PAGE_MASK + 1 - (addr & _PAGE_MASK))
                        if span > length:
                            span = length
                        kind = _xlate_read(txq, addr, span, &src)
                        if kind:
                            self.rx._fault(txq.domain, addr, kind)
                            v = _TXV_DMA
                            break
                        memcpy(self.scratch + pos, src, span)
                        pos += span
                        addr += span
                        length -= span
                    if v != _TXV_SENT:
                        break
            f = self.scratch
        flen = <uint32_t>total
        flen_in = flen
        tagged = False
        tci = 0
        if v == _TXV_SENT:
            tagged = ((<uint32_t>f[12] << 8) | f[13]) == t.vet
            if tagged and flen < _ETH_HLEN + _VLAN_HLEN:
                v = _TXV_LENGTH
        # One-entry flow cache: a frame with the same first 16 bytes (DA, SA, type/tag) from the same
        # pool as the last one forwarded in this run passed the same anti-spoof checks and goes to
        # the same local pools (the tables do not change during a run).
        hit = False
        if v == _TXV_SENT and t.vt and flen >= 16:
            memcpy(&k0, f, 8)
            memcpy(&k1, f + 8, 8)
            hit = self.fc_valid and self.fc_pool == pool and self.fc_k0 == k0 and self.fc_k1 == k1
        if v == _TXV_SENT and t.vt and not hit:
            spoof = self.regs[_W_PFVFSPOOF + (pool >> 3)]
            if (spoof >> (pool % 8)) & 1:
                owners = 0
                if not _rar_find(t, _mac_key(f + 6), &owners) or not (owners >> pool) & 1:
                    v = _TXV_SPOOFED
            if v == _TXV_SENT and tagged and (spoof >> (_SPOOF_VLAN_SHIFT + pool % 8)) & 1:
                if (self.regs[_W_VMVIR + pool] & _VLANA_MASK) == _VLANA_DEFAULT:
                    v = _TXV_SPOOFED
                elif not (t.vid_pools[((<uint32_t>f[14] << 8) | f[15]) & 0xFFF] >> pool) & 1:
                    v = _TXV_SPOOFED
            if v == _TXV_SPOOFED and (self.vmecm >> pool) & 1:
                self.regs[_W_SSVPC] += 1
        if v != _TXV_SENT:
            self._count(pool, _TP_POSTED, _TQ_POSTED, 1)
            self._count(pool, _TP_DROPPED, _TQ_DROPPED, 1)
            if v == _TXV_DISABLED:
                self._count(pool, _TP_DISABLED, _TQ_DISABLED, 1)
            elif v == _TXV_LENGTH:
                self._count(pool, _TP_LENGTH, _TQ_LENGTH, 1)
            elif v == _TXV_DMA:
                self._count(pool, _TP_DMA, _TQ_DMA, 1)
            else:
                self._count(pool, _TP_SPOOFED, _TQ_SPOOFED, 1)
            return v
        # the port VLAN (VMVIR VLANA = always insert)
        vmvir = self.regs[_W_VMVIR + pool] if t.vt else 0
        if (vmvir & _VLANA_MASK) == _VLANA_DEFAULT:
            memmove(self.scratch + 16, self.scratch + 12, flen - 12)
            self.scratch[12] = (_TPID_8021Q >> 8) & 0xFF
            self.scratch[13] = _TPID_8021Q & 0xFF
            self.scratch[14] = (vmvir >> 8) & 0xFF
            self.scratch[15] = vmvir & 0xFF
            f = self.scratch
            flen += _VLAN_HLEN
            tagged = ((<uint32_t>f[12] << 8) | f[13]) == t.vet
        plen = flen if flen >= _ETH_ZLEN else _ETH_ZLEN
        tci = ((<uint32_t>f[14] << 8) | f[15]) if tagged else 0
        # the VEB
        multicast = (f[0] & 1) != 0
        pools = 0
        if hit:
            pools = self.fc_pools
        elif self.veb:
            r = l2_select(t, f, tagged, tci & 0xFFF, False, &pools)
            if r != DELIVERED:
                pools = 0
            pools &= ~(1ULL << pool)
        if t.vt and not hit and flen_in >= 16:
            self.fc_valid = True
            self.fc_pool = pool
            self.fc_k0 = k0
            self.fc_k1 = k1
            self.fc_pools = pools
        to_wire = multicast or pools == 0
        if to_wire and (self.o_fill[0] >= self.o_offs.shape[0]
                        or self.o_fill[1] + plen > self.o_data.shape[0]):
            return _TXV_WAIT
        self.sacc[pool][0] += 1
        self.sacc[pool][1] += 1
        self.sacc[pool][2] += plen
        if pools:
            self.pc[_TP_LOCAL] += 1
            self._deliver_local(pools, f, flen, plen, tagged, tci,
                                multicast and _mac_key(f) != _BROADCAST_KEY)
        if to_wire:
            self.pc[_TP_WIRE] += 1
            self._send(f, flen, plen)
            if pools:
                self.pc[_TP_FLOODED] += 1
        return _TXV_SENT

    cdef inline void _deliver_local(self, uint64_t pools, const uint8_t* f, uint32_t flen, uint32_t plen,
                             bint tagged, uint32_t tci, bint multicast) noexcept nogil:
        """One copy per local pool through the receive DMA path (counted as received copies)."""
        cdef QState* qs
        cdef uint32_t written = 0
        cdef int p, r
        while pools:
            p = __builtin_ctzll(pools)
            pools &= pools - 1
            self.pc[_TP_LCOPIES] += 1
            self.dacc[p][0] += 1
            if (self.vfre >> p) & 1:
                qs = &self.rx.qs[p]
                if qs.state == _Q_UNLOADED:
                    self.rx._queue(p)
                r = _copy_fast(qs, f, flen, plen, tagged, tci, &written, _stream_now(), self.now)
                if r < 0:
                    r = self.rx._copy(qs, f, flen, plen, tagged, tci, &written, self.now)
            else:
                r = QUEUE_DISABLED
            if r == DELIVERED:
                self.dacc[p][1] += 1
                self.dacc[p][2] += written
                if multicast:
                    self.dacc[p][3] += 1
                self._rxq[qs.q] += 1
            elif r == NO_DMA_RESOURCES:
                self._count(p, _TP_RX_NODMA, _TQ_RX_DROPPED, 1)
            elif r == MISSED:
                self._count(p, _TP_RX_MISSED, _TQ_RX_DROPPED, 1)
            elif r == DMA_FAULT:
                self._count(p, _TP_RX_FAULT, _TQ_RX_FAULT, 1)
            else:
                self._count(p, _TP_RX_QDIS, _TQ_RX_QDIS, 1)

    cdef inline void _send(self, const uint8_t* f, uint32_t flen, uint32_t plen) noexcept nogil:
        """Append the frame (padded to ``plen``) to the wire's output; room was checked."""
        cdef int64_t i = self.o_fill[0], at = self.o_fill[1]
        _emit(&self.o_data[at], f, flen, 0, plen)
        self.o_offs[i] = at
        self.o_lens[i] = plen
        self.o_ts[i] = self.now
        self.o_fill[0] = i + 1
        self.o_fill[1] = at + plen


cdef Py_ssize_t _tx_fill_run(uint32_t[:, ::1] ring, uint8_t[::1] mem, const uint64_t[::1] bufs,
                             uint32_t buffer_size, Py_ssize_t ntu, Py_ssize_t free,
                             const uint8_t[::1] data, const int64_t[::1] offsets,
                             const uint32_t[::1] lengths, Py_ssize_t n, int32_t[::1] watch,
                             Py_ssize_t* frames_out) noexcept nogil:
    """`tx_fill`'s work once every bound is checked: returns the descriptors used, frames placed
    in ``frames_out``."""
    cdef Py_ssize_t count = ring.shape[0], frames = 0, used = 0, i, k, need, slot, first
    cdef uint32_t length, piece, cmd
    cdef uint64_t addr
    cdef uint32_t base_cmd = _TXD_BASE_CMD
    cdef uint32_t last_cmd = _DCMD_EOP | _DCMD_RS
    for i in range(n):
        length = lengths[i]
        need = (length + buffer_size - 1) // buffer_size if length else 1
        if need > free - used:
            break
        first = (ntu + used) % count
        for k in range(need):
            slot = (ntu + used) % count
            piece = length - <uint32_t>k * buffer_size
            if piece > buffer_size:
                piece = buffer_size
            addr = bufs[slot]
            if piece:
                memcpy(&mem[addr], &data[offsets[i] + <Py_ssize_t>k * buffer_size], piece)
            cmd = base_cmd | piece
            if k == need - 1:
                cmd |= last_cmd
            ring[slot, 0] = <uint32_t>(addr & 0xFFFFFFFFU)
            ring[slot, 1] = <uint32_t>(addr >> 32)
            ring[slot, 2] = cmd
            ring[slot, 3] = length << _TXD_PAYLEN_SHIFT
            used += 1
        watch[first] = <int32_t>((ntu + used - 1) % count)
        frames += 1
    frames_out[0] = frames
    return used


cdef Py_ssize_t _tx_clean_run(const uint32_t[:, ::1] ring, const int32_t[::1] watch, Py_ssize_t ntc,
                              Py_ssize_t ntu, Py_ssize_t* ntc_out) noexcept nogil:
    """`tx_clean`'s scan once the arguments are checked: returns the frames, next_to_clean in ``ntc_out``."""
    cdef Py_ssize_t count = ring.shape[0], frames = 0, eop
    while ntc != ntu:
        eop = watch[ntc]
        # the frame's last descriptor must lie in [ntc, ntu) (ring order): a corrupt entry stops
        if (eop < 0 or eop >= count or (eop - ntc + count) % count >= (ntu - ntc + count) % count
                or not ring[eop, 3] & _TXD_DD):
            break
        frames += 1
        ntc = eop + 1 if eop + 1 < count else 0
    ntc_out[0] = ntc
    return frames


# -- the driver side (ixgbevf_xmit_frame / ixgbevf_clean_tx_irq), used by sriov.drivers.txring.TxRing --
def tx_fill(uint32_t[:, ::1] ring not None, uint8_t[::1] mem not None, const uint64_t[::1] bufs not None,
            uint32_t buffer_size, Py_ssize_t ntu, Py_ssize_t free, const uint8_t[::1] data not None,
            const int64_t[::1] offsets not None, const uint32_t[::1] lengths not None, Py_ssize_t n,
            int32_t[::1] watch not None):
    """The driver's transmit: frames ``[0, n)`` of (data, offsets, lengths) into the ring from next_to_use.

    ``ring`` is the descriptor ring as (count, 4) little-endian words, ``bufs[d]`` the guest address
    of descriptor d's buffer (``buffer_size`` bytes in ``mem``). Each frame takes ceil(len / buffer_size)
    descriptors (at least one): advanced data descriptors (DTYP_DATA | DEXT | IFCS, DTALEN), the last
    with EOP | RS, every one with PAYLEN = the frame length; ``watch[first]`` = the frame's last
    descriptor (ixgbevf's next_to_watch). Stops before a frame that does not fit in ``free``
    descriptors. Returns ``(frames placed, descriptors used)``; the caller writes the tail.
    """
    cdef Py_ssize_t count = ring.shape[0], frames = 0, used = 0, bad, i
    if ring.shape[1] != 4 or bufs.shape[0] != count or watch.shape[0] != count or count == 0:
        raise _ConfigError("ring must be (count, 4) words, one buffer address and watch slot per descriptor")
    if not 0 <= ntu < count or not 0 <= free < count:
        raise _ConfigError(f"next_to_use {ntu} / free {free} outside the {count}-descriptor ring")
    if not 0 < buffer_size <= _DTALEN_MASK:
        raise _ConfigError(f"buffer size must be in 1..{_DTALEN_MASK}, got {buffer_size}")
    if not 0 <= n <= offsets.shape[0] or lengths.shape[0] != offsets.shape[0]:
        raise _ConfigError(f"{n} frames asked of {offsets.shape[0]} offsets / {lengths.shape[0]} lengths")
    with nogil:
        bad = -1
        for i in range(count):
            if bufs[i] > <uint64_t>mem.shape[0] or buffer_size > mem.shape[0] - bufs[i]:
                bad = i
                break
        if bad < 0:
            bad = _first_out_of_bounds(data.shape[0], &offsets[0], &lengths[0], n) if n else -1
            if bad >= 0:
                bad += count
    if bad >= 0:
        if bad < count:
            raise _ConfigError(f"buffer of descriptor {bad} lies outside the {mem.shape[0]}-byte memory")
        raise _ConfigError(f"frame {bad - count} lies outside the {data.shape[0]}-byte data buffer")
    with nogil:
        used = _tx_fill_run(ring, mem, bufs, buffer_size, ntu, free, data, offsets, lengths, n, watch, &frames)
    return frames, used


def tx_clean(const uint32_t[:, ::1] ring not None, const int32_t[::1] watch not None, Py_ssize_t ntc,
             Py_ssize_t ntu):
    """The driver's completion scan: frames from next_to_clean whose last descriptor has DD.

    Returns ``(frames completed, new next_to_clean)``; stops at ``ntu``, at a frame not yet written
    back, or at a watch entry outside [ntc, ntu).
    """
    cdef Py_ssize_t count = ring.shape[0], frames = 0
    if ring.shape[1] != 4 or watch.shape[0] != count or count == 0:
        raise _ConfigError("ring must be (count, 4) words with one watch slot per descriptor")
    if not 0 <= ntc < count or not 0 <= ntu < count:
        raise _ConfigError(f"next_to_clean {ntc} / next_to_use {ntu} outside the {count}-descriptor ring")
    with nogil:
        frames = _tx_clean_run(ring, watch, ntc, ntu, &ntc)
    return frames, ntc


@cython.final
cdef class TxRingCore:
    """The driver's per-burst ring work, bound once to one TX ring's arrays (`tx_fill` after
    `tx_clean`, as ixgbevf_xmit_frame finds its free descriptors). Twin:
    ``sriov.golden.tx.TxRingCore``.

    Binding once is the point: `tx_fill` re-acquires seven buffers and re-checks every buffer
    address per call, which costs more than filling a burst of 32 frames. The buffer addresses
    are copied and checked here, once (later changes to the caller's array do not reach them);
    ``ring`` and ``watch`` stay shared with the caller (any values in them are handled).
    """

    cdef uint32_t[:, ::1] ring
    cdef uint8_t[::1] mem
    cdef uint64_t[::1] bufs
    cdef int32_t[::1] watch
    cdef uint32_t buffer_size
    cdef readonly Py_ssize_t count

    def __init__(self, uint32_t[:, ::1] ring not None, uint8_t[::1] mem not None,
                 const uint64_t[::1] bufs not None, uint32_t buffer_size, int32_t[::1] watch not None):
        cdef Py_ssize_t count = ring.shape[0], i
        if ring.shape[1] != 4 or bufs.shape[0] != count or watch.shape[0] != count or count < 2:
            raise _ConfigError(
                "ring must be (count >= 2, 4) words, one buffer address and watch slot per descriptor")
        if not 0 < buffer_size <= _DTALEN_MASK:
            raise _ConfigError(f"buffer size must be in 1..{_DTALEN_MASK}, got {buffer_size}")
        own = _np.array(bufs, dtype=_np.uint64, copy=True)
        self.bufs = own
        for i in range(count):
            if self.bufs[i] > <uint64_t>mem.shape[0] or buffer_size > mem.shape[0] - self.bufs[i]:
                raise _ConfigError(f"buffer of descriptor {i} lies outside the {mem.shape[0]}-byte memory")
        self.ring, self.mem, self.watch = ring, mem, watch
        self.buffer_size = buffer_size
        self.count = count

    def send(self, Py_ssize_t ntu, Py_ssize_t ntc, const uint8_t[::1] data not None,
             const int64_t[::1] offsets not None, const uint32_t[::1] lengths not None, Py_ssize_t n):
        """Reclaim completed frames from ``ntc`` (when any descriptor is in flight), then place frames
        ``[0, n)`` from ``ntu`` in the descriptors left free (one stays unused). Returns ``(frames
        placed, descriptors used, frames reclaimed, new next_to_clean)``; the caller writes the tail."""
        cdef Py_ssize_t count = self.count, frames = 0, used = 0, cleaned = 0, free, bad
        if not 0 <= ntu < count or not 0 <= ntc < count:
            raise _ConfigError(f"next_to_use {ntu} / next_to_clean {ntc} outside the {count}-descriptor ring")
        if not 0 <= n <= offsets.shape[0] or lengths.shape[0] != offsets.shape[0]:
            raise _ConfigError(f"{n} frames asked of {offsets.shape[0]} offsets / {lengths.shape[0]} lengths")
        with nogil:
            bad = _first_out_of_bounds(data.shape[0], &offsets[0], &lengths[0], n) if n else -1
            if bad < 0:
                if ntc != ntu:
                    cleaned = _tx_clean_run(self.ring, self.watch, ntc, ntu, &ntc)
                free = count - 1 - (ntu - ntc + count) % count
                used = _tx_fill_run(self.ring, self.mem, self.bufs, self.buffer_size, ntu, free, data,
                                    offsets, lengths, n, self.watch, &frames)
        if bad >= 0:
            raise _ConfigError(f"frame {bad} lies outside the {data.shape[0]}-byte data buffer")
        return frames, used, cleaned, ntc

    def clean(self, Py_ssize_t ntc, Py_ssize_t ntu):
        """`tx_clean` on the bound ring: ``(frames completed, new next_to_clean)``."""
        cdef Py_ssize_t frames
        if not 0 <= ntc < self.count or not 0 <= ntu < self.count:
            raise _ConfigError(
                f"next_to_clean {ntc} / next_to_use {ntu} outside the {self.count}-descriptor ring")
        with nogil:
            frames = _tx_clean_run(self.ring, self.watch, ntc, ntu, &ntc)
        return frames, ntc
