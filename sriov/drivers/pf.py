"""The PF driver: the upstream Linux ixgbe PF's SR-IOV side (spec §3), through BAR0 only.

It owns the port: brings it up (register by register, as ``ixgbe_up`` does), enables
SR-IOV, serves every VF over the legacy mailbox from its "other" MSI-X vector (the
``ixgbe_msg_task`` loop: per VF, reset events, then messages, then acks), keeps the RAR,
VLVF/VFTA and MTA tables, pings VFs on link / trust / state changes, and gives the host
administrator the ``ip link set dev PF vf N ...`` controls.

What it knows about each VF is ``VfInfo`` (``struct vf_data_storage``); what the hardware
knows lives only in the device's registers, written here through ``fn.write32``.

A bad message from a VF never raises: it gets a NACK and a per-VF counter
(`PfDriver.vf_counters`). Administrator calls validate everything first and raise
`ConfigError` / `DriverStateError` naming what was wrong, with nothing changed.
"""

from __future__ import annotations

import collections
import importlib
import importlib.util
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sriov.drivers import mailbox as M
from sriov.drivers.mailbox import LogEntry, MailboxLog, MboxApi, Message, PfMailbox, XcastMode
from sriov.drivers.ring_args import poll_budget
from sriov.errors import ConfigError, DriverStateError
from sriov.hw import regs as R
from sriov.hw.device import Device82599
from sriov.memory import GuestMemory

log = logging.getLogger("sriov.drivers")  # the drivers' kernel-log lines (ixgbe and ixgbevf)

ETH_FRAME_LEN = 1514
ETH_DATA_LEN = 1500
ETH_MIN_MTU = 68
MAX_MTU = R.MAX_JUMBO_FRAME_SIZE - (R.ETH_HLEN + R.ETH_FCS_LEN)  # 9710
IXGBE_MAX_PF_MACVLANS = 15
LOG_LIMIT = 4096  # transcript entries kept per VF
LINK_STATES = ("auto", "enable", "disable")
OTHER_VECTOR = 1  # MSI-X vector of the "other" causes: queue vector 0, then this one (as ixgbe)
MC_FILTER_TYPE = 0  # MCSTCTRL.MO the Linux PF uses
IXGBE_SUPPORTED_FEATURES = M.IXGBEVF_PF_SUP_IPSEC  # what FEATURES_NEGOTIATE grants (no ESX mailbox)
IXGBE_IPSEC_MAX_SA_COUNT = 1024  # Rx SAs 0..1023, Tx SAs 1024..2047 (IXGBE_IPSEC_BASE_TX_INDEX)
# The API versions each handler's switch lists ("1.1 and later": 1.5 is never negotiated).
APIS_11_UP = (MboxApi.API_11, MboxApi.API_12, MboxApi.API_13, MboxApi.API_14, MboxApi.API_16, MboxApi.API_17)
APIS_12_UP = APIS_11_UP[1:]

# Per-VF counters the PF keeps (a misbehaving VF is visible here, and only here).
VF_COUNTERS = (
    "requests",  # messages read from the VF
    "acks_sent",  # replies with SUCCESS
    "nacks_sent",  # replies with FAILURE (for any reason)
    "reset_msgs",  # IXGBE_VF_RESET messages served
    "vflr_events",  # VF-level resets (VFCTRL.RST / FLR) seen
    "unhandled_msgs",  # unknown opcodes ("Unhandled Msg")
    "not_cts_msgs",  # requests before RESET / after losing clear-to-send
    "flagged_msgs",  # requests already carrying SUCCESS/FAILURE (garbage or an echo)
    "refused_msgs",  # known opcodes whose checks failed
    "lock_failures",  # the VF held VFU when the PF wanted the buffer
    "vf_acks",  # VFACK seen (the VF read a PF message)
    "cts_nacks",  # FAILURE-only messages sent to a VF that read while not clear to send
    "pings",  # IXGBE_PF_CONTROL_MSG sent
    "capped_msgs",  # refused by the untrusted-VF rules: VLAN/MACVLAN caps, another pool's MAC
    "evicted_macs",  # unicast filters of this VF removed because the administrator gave the MAC away
)


@dataclass
class VfInfo:
    """``struct vf_data_storage``: what the PF remembers about one VF."""

    mac: bytes = bytes(6)
    mc_hashes: list[int] = field(default_factory=list)
    clear_to_send: bool = False
    pf_set_mac: bool = False
    pf_vlan: int = 0
    pf_qos: int = 0
    spoofchk: bool = True
    trusted: bool = False
    rss_query: bool = False
    xcast_mode: XcastMode = XcastMode.NONE
    link_state: str = "auto"
    link_enable: bool = True
    api: MboxApi = MboxApi.API_10
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(VF_COUNTERS, 0))


@dataclass
class _MacEntry:
    mac: bytes
    pool: int


class PfDriver:
    """The ixgbe PF driver bound to one port's physical function."""

    SUPPORTED_APIS = (MboxApi.API_10, *APIS_11_UP)  # ixgbe_negotiate_vf_api: 1.5 and 2.0 refused
    #: Model decision (README, "Decisions of our own"): upstream ixgbe lets any VF fill the
    #: shared VLVF table (63 VLANs) and the shared MACVLAN list, after which no other VF can add
    #: one. Like ice (ICE_MAX_VLAN_PER_VF = 8) and i40e, an untrusted VF here holds at most this
    #: many VLAN filters and extra unicast (MACVLAN) filters; a trusted VF has no cap. None
    #: restores upstream ixgbe's behaviour.
    UNTRUSTED_VF_MAX_VLANS: int | None = 8
    UNTRUSTED_VF_MAX_MACVLANS: int | None = 16
    #: Model decision: the shared tables are also kept from colluding VFs. Beyond its share
    #: (the cap, or less when the VFs' caps do not all fit), an untrusted VF takes a new VLVF
    #: entry or MACVLAN slot only if what stays free still covers every other VF's unused share
    #: and, for VLVF, this many entries for the administrator's port VLANs and the PF's VLANs.
    ADMIN_RESERVED_VLVF = 8

    def __init__(
        self,
        device: Device82599,
        mac: bytes,
        rss_queues: int = 4,
        seed: int = 0,
        memory: GuestMemory | None = None,
    ) -> None:
        self.device = device
        self.memory = memory  # host memory for the PF's own receive ring (None: no ring)
        self.rx_ring: Any | None = None
        self.tx_ring: Any | None = None
        self._ring_mark: int | None = None  # host memory allocated before the rings (given back on a move)
        self._ring_queue = 0  # the PF queue the rings serve
        self.function = device.pf
        self.clock = device.clock
        self.mbx = PfMailbox(self.function)
        self.mac = bytes(mac)
        self.mtu = ETH_DATA_LEN
        self.promisc = False
        self.allmulti = False
        self.mc_list: list[bytes] = []
        self.rss_queues = rss_queues  # RSS limit (ixgbe: min(online CPUs, 16)); the PF pool's RSS width
        self.vfinfo: list[VfInfo] = []
        self.mac_table: list[_MacEntry | None] = [None] * R.NUM_RAR
        # The shared VF MACVLAN list (adapter->vf_mvs): per slot (owner VF, MAC), or None when free.
        self.vf_macvlans: list[tuple[int, bytes] | None] = []
        self.active_vlans: set[int] = {0}  # the PF's own VLANs (the stack adds VID 0 on open)
        self.vlan_promisc = False  # IXGBE_FLAG2_VLAN_PROMISC: the PF joined every VLAN (promiscuous)
        self.loaded = False
        self.is_up = False
        self._assigned: set[int] = set()
        self._logs: dict[int, collections.deque[LogEntry]] = {}
        rng = np.random.default_rng([seed, 0x1D])
        self.rss_key = rng.integers(0, 256, M.IXGBE_RSS_KEY_SIZE, dtype=np.uint8).tobytes()
        self.link_up_seen = False

    # ==========================================================================================
    # load / unload, up / down
    def load(self) -> None:
        """Probe and open: reset the port and bring it up (no VFs yet)."""
        if self.loaded:
            return
        self.loaded = True
        self._hw_reset()
        self._up()

    def unload(self) -> None:
        """Remove the driver; refused while any VF is assigned to a VM (as ``pci_vfs_assigned``)."""
        self._refuse_if_assigned("unload the PF driver")
        if self.vfinfo:
            self._disable_sriov()
        self._down()
        self.loaded = False

    def _refuse_if_assigned(self, what: str) -> None:
        if self._assigned:
            vfs = ", ".join(str(v) for v in sorted(self._assigned))
            raise DriverStateError(
                f"{self.function.name}: cannot {what} while VFs are assigned to VMs (VF {vfs}); "
                "unassign them first (ixgbe: 'Unloading driver while VFs are assigned')"
            )

    def _mark_assigned(self, vf: int, assigned: bool) -> None:
        """The PCI core's view (``PCI_DEV_FLAGS_ASSIGNED``), set by the host on assign/unassign."""
        if assigned:
            self._assigned.add(vf)
        else:
            self._assigned.discard(vf)

    def assigned_vfs(self) -> list[int]:
        """VFs currently assigned to VMs."""
        return sorted(self._assigned)

    @property
    def num_vfs(self) -> int:
        """VFs enabled."""
        return len(self.vfinfo)

    @property
    def pf_pool(self) -> int:
        """``VMDQ_P(0)``: the PF's pool, the first after the VFs."""
        return len(self.vfinfo)

    def _w(self, offset: int, value: int) -> None:
        self.function.write32(offset, value & M.U32)

    def _r(self, offset: int) -> int:
        return self.function.read32(offset)

    def _down(self) -> None:
        """``ixgbe_down``: VFs lose clear-to-send and are pinged, then the port resets."""
        was_up = self.is_up
        self.is_up = False
        if was_up and self.vfinfo:
            for info in self.vfinfo:
                info.clear_to_send = False
            self._set_all_vfs()
        self._w(R.EIMC, M.U32)
        self._hw_reset()
        self.device.set_link(False)  # 82599 SFP: the driver turns the Tx laser off
        self.link_up_seen = False

    def _hw_reset(self) -> None:
        """CTRL.RST: every register to its default; VFs see RSTI until PFRSTD."""
        self._w(R.CTRL, R.CTRL_RST)
        self.vlan_promisc = False  # the VLAN tables it had filled are gone
        # ixgbe_flush_sw_mac_table + ixgbe_mac_set_default_filter: only RAR0 survives a reset.
        self.mac_table = [None] * R.NUM_RAR
        self.mac_table[0] = _MacEntry(self.mac, self.pf_pool)

    def _up(self) -> None:
        """``ixgbe_up``: configure, PFRSTD, then every VF is pushed to reset."""
        self._configure()
        self._w(R.CTRL_EXT, self._r(R.CTRL_EXT) | R.CTRL_EXT_PFRSTD)  # "so PF/VF mail ops can work"
        self.is_up = True
        self._set_all_vfs()
        self._setup_rings()
        self.function.set_msix_handler(OTHER_VECTOR, self._irq_other)
        self._w(R.EIMS, R.EICR_MAILBOX | R.EICR_LSC)
        self.device.set_link(True)  # Tx laser on; the link partner answers
        self._watchdog_link()

    def _setup_rings(self) -> None:
        """The PF pool's first receive and transmit queues: rings in host memory (when the
        datapath build has them). The same queue as before: programmed again (the reset cleared
        its registers). Another queue (the PF's pool moves with the VF count): the old rings'
        memory is given back and new rings are carved from it, so any number of set_numvfs
        changes needs the memory of one pair of rings."""
        if self.memory is None:
            return
        queue = self.pf_pool * self.device.queues_per_pool() if self.vfinfo else 0
        if self._ring_mark is not None and self._ring_queue == queue:
            for ring in (self.rx_ring, self.tx_ring):
                if ring is not None:
                    ring.up()
            return
        if self._ring_mark is None:
            self._ring_mark = self.memory.allocated
        else:
            self.memory.release_to(self._ring_mark)
        self._ring_queue = queue
        self.rx_ring = self.tx_ring = None
        if importlib.util.find_spec("sriov.drivers.rings") is not None:
            rings = importlib.import_module("sriov.drivers.rings")
            try:
                self.rx_ring = rings.RxRing(self.function, self.memory, queue)
            except ConfigError:  # host memory too small for a ring: run without one
                self.rx_ring = None
        if importlib.util.find_spec("sriov.drivers.txring") is not None:
            from sriov.drivers.txring import TxRing

            try:
                self.tx_ring = TxRing(self.function, self.memory, queue, count=256)
            except ConfigError:
                self.tx_ring = None

    def transmit(self, batch: Any) -> int:
        """Send a `Batch` from the PF's own pool (anti-spoof does not apply to it; the VEB does)."""
        if self.tx_ring is None or not self.is_up:
            raise DriverStateError(
                f"{self.function.name}: no transmit ring "
                "(PF down, or the datapath rings are not in this build)"
            )
        return self.tx_ring.transmit(batch)

    def rx_poll(self, budget: int = 64) -> Any:
        """Frames the PF took off its own ring (a zero-copy `Batch`)."""
        if self.rx_ring is None or not self.is_up:
            raise DriverStateError(
                f"{self.function.name}: no receive ring "
                "(PF down, or the datapath rings are not in this build)"
            )
        return self.rx_ring.poll(poll_budget(budget))

    def reset(self) -> None:
        """``ixgbe_reinit_locked``: down and up again (what an MTU change or a Tx hang does)."""
        if not self.loaded:
            raise DriverStateError(f"{self.function.name}: the PF driver is not loaded")
        self._down()
        self._up()

    def _configure(self) -> None:
        """``ixgbe_configure``: pool mode, virtualization, frame size, filters, interrupts."""
        sriov = bool(self.vfinfo)
        qpp_mask = self._pool_mode()
        gpie = R.GPIE_MSIX_MODE
        if sriov:
            gpie |= {8: R.GPIE_VTMODE_16, 4: R.GPIE_VTMODE_32}.get(qpp_mask, R.GPIE_VTMODE_64)
            self._w(R.GCR_EXT, {8: R.GCR_EXT_VT_MODE_16, 4: R.GCR_EXT_VT_MODE_32}.get(
                qpp_mask, R.GCR_EXT_VT_MODE_64))  # fmt: skip
        self._w(R.GPIE, gpie)
        self._w(R.IVAR_MISC, (OTHER_VECTOR | R.IVAR_ALLOC_VAL_PF) << 8)
        self._w(R.HLREG0, R.HLREG0_RXCRCSTRP | R.HLREG0_JUMBOEN)
        self._write_maxfrs(self._pf_max_frame() + R.ETH_FCS_LEN)
        self._w(R.VLNCTRL, R.ETH_P_8021Q | R.VLNCTRL_VFE)  # set_rx_mode turns VLAN promiscuity on
        if sriov:
            self._configure_virtualization()
        self._sync_mac_table()
        for vid in sorted(self.active_vlans):
            self._set_vfta(vid, self.pf_pool, True)
        self._set_rx_mode()

    def _pool_mode(self) -> int:
        """Queues per pool as ``ixgbe_set_sriov_queues`` picks them: 64x2 only when more than 32
        pools are needed, else 32x4 (whatever the RSS limit: it narrows RSS, not the pools)."""
        if not self.vfinfo:
            return 0
        pools = len(self.vfinfo) + 1
        return 2 if pools > 32 else 4

    def queues_per_pool(self) -> int:
        """Queues per pool in the current mode (from GCR_EXT, as the hardware decodes it)."""
        return self.device.queues_per_pool()

    def _configure_virtualization(self) -> None:
        pool = self.pf_pool
        self._w(R.VT_CTL, R.VT_CTL_VT_ENABLE | (pool << R.VT_CTL_POOL_SHIFT) | R.VT_CTL_REPLEN)
        self._w(R.VMOLR(pool), R.VMOLR_AUPE)
        shift, reg = pool % 32, 1 if pool >= 32 else 0
        # "Enable only the PF's pool for Tx/Rx": GENMASK(31, shift) in its register, and
        # the other register all-ones (PF in the low half) or zero (PF in the high half).
        for base in (R.VFRE, R.VFTE):
            self._w(base(reg), (M.U32 << shift) & M.U32)
            self._w(base(reg ^ 1), (reg - 1) & M.U32)
        self._w(R.PFDTXGSWC, R.PFDTXGSWC_VT_LBEN)
        for vf, info in enumerate(self.vfinfo):
            self._write_spoofchk(vf, info.spoofchk)
        qpp = self.device.queues_per_pool()
        for vf in range(len(self.vfinfo)):
            for q in range(qpp):  # SR-IOV drop policy: every VF queue drops when it has no buffer
                self._w(R.QDE, R.QDE_WRITE | R.QDE_ENABLE | ((vf * qpp + q) << R.QDE_IDX_SHIFT))

    def _pf_max_frame(self) -> int:
        """``netdev->mtu + ETH_HLEN`` (what the 82599 jumbo rule compares)."""
        return self.mtu + R.ETH_HLEN

    def _write_maxfrs(self, max_frame: int) -> None:
        max_frame = max(max_frame, ETH_FRAME_LEN + R.ETH_FCS_LEN)
        mhadd = self._r(R.MAXFRS)
        if (mhadd & R.MHADD_MFS_MASK) >> R.MHADD_MFS_SHIFT != max_frame:
            self._w(R.MAXFRS, (mhadd & ~R.MHADD_MFS_MASK) | (max_frame << R.MHADD_MFS_SHIFT))

    # ==========================================================================================
    # SR-IOV enable / disable (sysfs sriov_numvfs)
    def set_numvfs(self, n: int) -> None:
        """As ``echo n > /sys/class/net/PF/device/sriov_numvfs``: 1..63 enables, 0 disables.

        Between two non-zero counts the kernel requires going through 0. Disabling is
        refused while any VF is assigned to a VM.
        """
        if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= R.MAX_VFS:
            raise ConfigError(f"{self.function.name}: num_vfs must be an int in 0..{R.MAX_VFS}, got {n!r}")
        if not self.loaded:
            raise DriverStateError(f"{self.function.name}: the PF driver is not loaded")
        if n == self.num_vfs:
            return
        if n and self.num_vfs:
            raise ConfigError(
                f"{self.function.name}: {self.num_vfs} VFs already enabled; "
                f"disable (write 0) before enabling {n} VFs, as sriov_numvfs requires"
            )
        if n == 0:
            self._refuse_if_assigned("disable SR-IOV")
        with self.device.dma_lock:  # no datapath batch runs while the VFs come or go
            if n == 0:
                self._disable_sriov()
            else:
                self._enable_sriov(n)

    def _enable_sriov(self, n: int) -> None:
        # __ixgbe_enable_sriov: fresh per-VF state (spoofchk on, untrusted, xcast NONE,
        # link auto, MAC zero), the shared MACVLAN slots, then reinit and pci_enable_sriov.
        # the device first: a refusal there (no IOMMU domain left for the VFs) leaves the driver
        # with the VFs it had (none)
        self.device.sriov_enable(n)
        self.vfinfo = [VfInfo() for _ in range(n)]
        self._logs = {vf: collections.deque(maxlen=LOG_LIMIT) for vf in range(n)}
        self.vf_macvlans = [None] * (R.NUM_RAR - (IXGBE_MAX_PF_MACVLANS + 1 + n))
        self._down()
        self._up()

    def _disable_sriov(self) -> None:
        self.device.sriov_disable()
        self.vfinfo = []
        self.vf_macvlans = []
        self._down()
        self._up()

    # ==========================================================================================
    # interrupts and the message task
    def _irq_other(self, vector: int) -> None:
        """``ixgbe_msix_other``: causes read through EICS (no clear), cleared by writing EICR."""
        eicr = self._r(R.EICS) & (R.EICR_MAILBOX | R.EICR_LSC)
        self._w(R.EICR, eicr)
        if not self.is_up:
            return
        if eicr & R.EICR_MAILBOX:
            self._msg_task()
        if eicr & R.EICR_LSC:
            self._watchdog_link()

    def service_mailbox(self) -> None:
        """Run the message task now (what the interrupt does), for callers without interrupts."""
        if self.is_up:
            self._msg_task()

    def _msg_task(self) -> None:
        # ixgbe tests three bits per VF, one register read each. Nothing can set a bit while
        # this task runs (it never lets simulated time pass), so one read of the cause
        # registers up front finds the VFs with something pending; the per-VF checks below
        # then run exactly as upstream's, on those VFs only.
        icr = [self._r(R.MBVFICR(i)) for i in range(4)]
        lre = [self._r(R.VFLRE(i)) for i in range(2)]
        for vf in range(len(self.vfinfo)):
            mask = (R.MBVFICR_VFREQ_VF1 | R.MBVFICR_VFACK_VF1) << (vf % 16)
            if not icr[vf >> 4] & mask and not lre[vf >> 5] >> (vf % 32) & 1:
                continue
            if self.mbx.check_for_rst(vf):
                self.vfinfo[vf].counters["vflr_events"] += 1
                self._vf_reset_event(vf)
            if self.mbx.check_for_msg(vf):
                self._rcv_msg_from_vf(vf)
            if self.mbx.check_for_ack(vf):
                self._rcv_ack_from_vf(vf)

    def _watchdog_link(self) -> None:
        """``ixgbe_watchdog_update_link``: on a change of LINKS.UP, ping every VF."""
        link = bool(self._r(R.LINKS) & R.LINKS_UP)
        if link != self.link_up_seen:
            self.link_up_seen = link
            self.ping_all_vfs()

    def _klog(self, fmt: str, *args: object, level: int = logging.WARNING) -> None:
        """A kernel-log line of ixgbe (``e_warn``/``e_info``), to the ``sriov.drivers`` logger."""
        log.log(level, "ixgbe %s: " + fmt, self.function.name, *args)

    # -- transcript ---------------------------------------------------------------------------
    def _log(self, vf: int, direction: str, msg: Message, words: Sequence[int], verdict: str) -> None:
        log = self._logs.get(vf)
        if log is not None:
            log.append(
                LogEntry(
                    self.clock.now, direction, msg.name, tuple(int(w) for w in words), verdict,
                    M.describe(msg, reply=direction == M.PF_TO_VF),
                )
            )  # fmt: skip

    def mailbox_log(self, vf: int) -> MailboxLog:
        """VF ``vf``'s transcript: time, direction, opcode name, words, verdict."""
        self._check_vf(vf)
        return MailboxLog(vf, list(self._logs.get(vf, ())))

    def vf_counters(self, vf: int) -> dict[str, int]:
        """The PF's per-VF message counters (NACKs, unknown opcodes, ...)."""
        self._check_vf(vf)
        return dict(self.vfinfo[vf].counters)

    def _send(self, vf: int, msg: Message, length: int) -> None:
        words = msg.words(max(length, len(msg.payload) + 1))
        if not self.mbx.write(vf, words):
            self.vfinfo[vf].counters["lock_failures"] += 1
            return
        shown = _trim(words, length)
        if msg.opcode == M.IXGBE_PF_CONTROL_MSG:
            self.vfinfo[vf].counters["pings"] += 1
            self._log(vf, M.PF_TO_VF, msg, shown, "")
        else:
            self._log(vf, M.PF_TO_VF, msg, shown, msg.verdict)

    # -- receive ------------------------------------------------------------------------------
    def _rcv_msg_from_vf(self, vf: int) -> None:
        info = self.vfinfo[vf]
        words = self.mbx.read(vf, R.VFMAILBOX_SIZE)
        if words is None:  # the VF holds VFU: the request is lost (it will time out)
            info.counters["lock_failures"] += 1
            return
        info.counters["requests"] += 1
        msg = Message.from_words(words)
        self._log(vf, M.VF_TO_PF, msg, _shown(msg, words, reply=False), "")
        if msg.result:
            # Upstream ignores an already-processed message without a reply; the model
            # answers NACK so that the VF never waits out a timeout (MODEL.md).
            info.counters["flagged_msgs"] += 1
            self._reply(vf, words, ok=False, length=1, cts=info.clear_to_send)
            return
        if words[0] == M.IXGBE_VF_RESET:
            self._vf_reset_msg(vf)
            return
        if not info.clear_to_send:
            info.counters["not_cts_msgs"] += 1
            self._reply(vf, words, ok=False, length=1, cts=False)
            return
        handler = _HANDLERS.get(msg.opcode)
        buf = list(words)
        if handler is None:
            info.counters["unhandled_msgs"] += 1
            ok = False
        else:
            ok = handler(self, vf, msg, buf)
            if not ok:
                info.counters["refused_msgs"] += 1
        # The PF writes the whole buffer back (spec §2, pitfall 4); the transcript shows the reply part.
        self._reply(vf, buf, ok=ok, length=_shown_len(msg, reply=True), cts=True, full=True)

    def _reply(self, vf: int, buf: list[int], ok: bool, length: int, cts: bool, full: bool = False) -> None:
        info = self.vfinfo[vf]
        w0 = buf[0] & ~M.RESULT_MASK  # a flagged request's own bits do not survive into the reply
        w0 |= M.IXGBE_VT_MSGTYPE_SUCCESS if ok else M.IXGBE_VT_MSGTYPE_FAILURE
        if cts:
            w0 |= M.IXGBE_VT_MSGTYPE_CTS
        out = [w0, *buf[1:]] if full else [w0]
        info.counters["acks_sent" if ok else "nacks_sent"] += 1
        msg = Message.from_words(out)
        if not self.mbx.write(vf, out):
            info.counters["lock_failures"] += 1
            return
        self._log(vf, M.PF_TO_VF, msg, out[:length] if M.OPCODES.get(msg.opcode) else _trim(out, length),
                  msg.verdict)  # fmt: skip

    def _rcv_ack_from_vf(self, vf: int) -> None:
        info = self.vfinfo[vf]
        info.counters["vf_acks"] += 1
        if not info.clear_to_send:  # "if device isn't clear to send it shouldn't be reading either"
            info.counters["cts_nacks"] += 1
            self._send(vf, Message(0, result=M.IXGBE_VT_MSGTYPE_FAILURE), 1)

    # -- pings --------------------------------------------------------------------------------
    def ping_vf(self, vf: int) -> None:
        """``ixgbe_ping_vf``: PF_CONTROL_MSG, with CTS only if the VF is clear to send."""
        self._send(vf, M.control_msg(self.vfinfo[vf].clear_to_send), 1)

    def ping_all_vfs(self) -> None:
        """``ixgbe_ping_all_vfs`` (link change)."""
        for vf in range(len(self.vfinfo)):
            self.ping_vf(vf)

    def _set_all_vfs(self) -> None:
        for vf, info in enumerate(self.vfinfo):
            self._set_vf_link_state(vf, info.link_state)

    def _set_vf_link_state(self, vf: int, state: str) -> None:
        info = self.vfinfo[vf]
        info.link_state = state
        info.link_enable = self.is_up if state == "auto" else state == "enable"
        self._set_vf_rx_tx(vf)
        info.clear_to_send = False  # restart the VF
        self.ping_vf(vf)

    def _set_vf_rx_tx(self, vf: int) -> None:
        reg, bit = vf // 32, 1 << (vf % 32)
        cur_tx, cur_rx = self._r(R.VFTE(reg)), self._r(R.VFRE(reg))
        if self.vfinfo[vf].link_enable:
            req_tx, req_rx = cur_tx | bit, cur_rx | bit
        else:
            req_tx, req_rx = cur_tx & ~bit, cur_rx & ~bit
        if self._pf_max_frame() > ETH_FRAME_LEN:  # 82599: no mix of jumbo PF and non-jumbo VFs
            req_rx = cur_rx & ~bit
        if req_tx != cur_tx:
            self._w(R.VFTE(reg), req_tx)
        if req_rx != cur_rx:
            self._w(R.VFRE(reg), req_rx)

    # ==========================================================================================
    # VF reset (spec §3.4)
    def _vf_reset_event(self, vf: int) -> None:
        info = self.vfinfo[vf]
        self._clear_vf_vlans(vf)
        self._set_vf_vlan(True, info.pf_vlan, vf)
        self._set_vmolr(vf, aupe=not info.pf_vlan)
        if not info.pf_vlan and not info.pf_qos:
            self._w(R.VMVIR(vf), 0)
        else:
            self._set_vmvir(vf, info.pf_vlan, info.pf_qos)
            if info.spoofchk:
                self._write_spoofchk(vf, True)
        info.mc_hashes = []
        self._set_rx_mode()
        self._del_mac_filter(info.mac, vf)
        self._set_vf_macvlan(vf, 0, None)
        info.api = MboxApi.API_10
        qpp = self.device.queues_per_pool()
        for q in range(qpp):  # restart each configured TX queue of the VF
            reg = R.TXDCTL(vf * qpp + q)
            val = self._r(reg)
            if val:
                self._w(reg, val | R.TXDCTL_ENABLE)
                self._w(reg, val & ~R.TXDCTL_ENABLE)

    def _vf_reset_msg(self, vf: int) -> None:
        info = self.vfinfo[vf]
        info.counters["reset_msgs"] += 1
        self._vf_reset_event(vf)
        self._clear_mbx(vf)
        if any(info.mac):
            self._set_vf_mac(vf, info.mac)
        qpp = self.device.queues_per_pool()
        qde = R.QDE_ENABLE | (R.QDE_HIDE_VLAN if info.pf_vlan else 0)
        for q in range(qpp):  # force drop enable for all VF RX queues
            self._w(R.QDE, R.QDE_WRITE | qde | ((vf * qpp + q) << R.QDE_IDX_SHIFT))
        self._set_vf_rx_tx(vf)
        info.clear_to_send = True
        reg, bit = vf // 32, 1 << (vf % 32)
        self._w(R.VMECM(reg), self._r(R.VMECM(reg)) | bit)
        for q in range(qpp):  # TDWBAL/H are not cleared by an FLR
            self._w(R.TDWBAH(vf * qpp + q), 0)
            self._w(R.TDWBAL(vf * qpp + q), 0)
        ack = any(info.mac) and info.pf_set_mac
        reply = M.reset_reply(ack, info.mac if ack else None, MC_FILTER_TYPE)
        info.counters["acks_sent" if ack else "nacks_sent"] += 1
        words = reply.words(M.IXGBE_VF_PERMADDR_MSG_LEN)
        if self.mbx.write(vf, words):
            self._log(vf, M.PF_TO_VF, reply, words, reply.verdict)
        else:
            info.counters["lock_failures"] += 1

    def _clear_mbx(self, vf: int) -> None:
        base = R.PFMBMEM(vf)
        for i in range(R.VFMAILBOX_SIZE):
            self._w(base + 4 * i, 0)

    # ==========================================================================================
    # message handlers (spec §3.3); each returns True for SUCCESS and may fill buf[1:]
    def _h_set_mac_addr(self, vf: int, msg: Message, buf: list[int]) -> bool:
        info = self.vfinfo[vf]
        new = M.decode_mac(msg)
        if not M.is_valid_ether_addr(new):
            return False
        if info.pf_set_mac and not info.trusted and new != info.mac:
            self._klog("VF %d attempted to override administratively set MAC address", vf)
            self._klog("Reload the VF driver to resume operations")
            return False
        if not info.trusted and self._mac_owned_by_other_pool(new, vf):
            info.counters["capped_msgs"] += 1
            return False  # model decision: no untrusted VF receives another function's unicast
        return self._set_vf_mac(vf, new)

    def _mac_owned_by_other_pool(self, mac: bytes, pool: int) -> bool:
        """Whether a RAR entry already gives ``mac`` to a pool other than ``pool``."""
        return any(e is not None and e.mac == mac and e.pool != pool for e in self.mac_table)

    def _h_set_multicast(self, vf: int, msg: Message, buf: list[int]) -> bool:
        info = self.vfinfo[vf]
        info.mc_hashes = M.decode_multicast(msg)
        # Each hash is ORed in; bits the VF dropped stay until the PF's next set_rx_mode
        # rebuilds the MTA. ROMPE is set even for an empty list (restore clears it then).
        for h in info.mc_hashes:
            reg = R.MTA((h >> 5) & 0x7F)
            self._w(reg, self._r(reg) | 1 << (h & 0x1F))
        self._w(R.VMOLR(vf), self._r(R.VMOLR(vf)) | R.VMOLR_ROMPE)
        return True

    def _h_set_vlan(self, vf: int, msg: Message, buf: list[int]) -> bool:
        info = self.vfinfo[vf]
        vid, add = M.decode_vlan(msg)
        if info.pf_vlan:
            self._klog("VF %d attempted to override administratively set VLAN configuration", vf)
            self._klog("Reload the VF driver to resume operations")
            return False
        if not vid and not add:
            return True  # VLAN 0 is never removed
        cap = self.UNTRUSTED_VF_MAX_VLANS
        if add and vid and cap is not None and not info.trusted:
            held = self._vf_vlans(vf)
            if vid not in held and (len(held) >= cap or not self._vlvf_share_allows(vf, vid, cap)):
                info.counters["capped_msgs"] += 1
                self._klog(
                    "VF %d is untrusted: VLAN %d refused, it holds the cap of %d VLAN filters", vf, vid, cap
                )
                return False  # an untrusted VF may not take the shared VLAN table from the others
        return self._set_vf_vlan(add, vid, vf)

    def _vlvf_share_allows(self, vf: int, vid: int, cap: int) -> bool:
        """Whether untrusted ``vf`` may add ``vid`` and keep the VLVF reservation (item 7)."""
        if any(self._r(R.VLVF(i)) == R.VLVF_VIEN | vid for i in range(1, R.NUM_VLVF)):
            return True  # joining an entry that exists costs nothing
        held = [0] * len(self.vfinfo)
        free = 0
        for i in range(1, R.NUM_VLVF):
            if not self._r(R.VLVF(i)) & R.VLVF_VIEN:
                free += 1
                continue
            pools = self._r(R.VLVFB(2 * i)) | self._r(R.VLVFB(2 * i + 1)) << 32
            for u in range(len(self.vfinfo)):
                held[u] += pools >> u & 1
        share = self._share(R.NUM_VLVF - 1 - self.ADMIN_RESERVED_VLVF, cap)
        if held[vf] < share:
            return True  # within its own share, which the others leave free for it
        owed = sum(max(0, share - h) for u, h in enumerate(held) if u != vf)
        return free - 1 >= self.ADMIN_RESERVED_VLVF + owed

    def _share(self, size: int, cap: int) -> int:
        """What each VF of a shared table of ``size`` entries is sure to get: its cap, or an equal
        part when the caps of all VFs do not fit."""
        return max(0, min(cap, size // max(1, len(self.vfinfo))))

    def _vf_vlans(self, vf: int) -> set[int]:
        """The non-zero VLAN IDs whose VLVF entry has ``vf``'s pool bit."""
        word, mask = vf // 32, 1 << (vf % 32)
        held = set()
        for i in range(1, R.NUM_VLVF):
            vlvf = self._r(R.VLVF(i))
            if vlvf & R.VLVF_VIEN and self._r(R.VLVFB(2 * i + word)) & mask:
                held.add(vlvf & R.VLVF_VLANID_MASK)
        return held

    def _h_set_lpe(self, vf: int, msg: Message, buf: list[int]) -> bool:
        return self._set_vf_lpe(vf, M.decode_lpe(msg))

    def _h_set_macvlan(self, vf: int, msg: Message, buf: list[int]) -> bool:
        info = self.vfinfo[vf]
        index = msg.info
        mac = M.decode_mac(msg)
        if info.pf_set_mac and not info.trusted and index > 0:
            self._klog("VF %d requested MACVLAN filter but is administratively denied", vf)
            return False
        if index:
            if not M.is_valid_ether_addr(mac):
                return False
            if not info.trusted and self._mac_owned_by_other_pool(mac, vf):
                info.counters["capped_msgs"] += 1
                return False  # model decision: no untrusted VF receives another function's unicast
            cap = self.UNTRUSTED_VF_MAX_MACVLANS
            if cap is not None and not info.trusted and index > 1 and not self._macvlan_share_allows(vf, cap):
                info.counters["capped_msgs"] += 1
                self._klog("VF %d is untrusted: MACVLAN refused, it holds its share of %d filters", vf, cap)
                return False  # the shared MACVLAN list is not one untrusted VF's (or a few's) to fill
            if info.spoofchk and info.trusted:
                # Upstream turns MAC and VLAN anti-spoofing off for any VF that adds a MACVLAN.
                # Model decision: not for an untrusted VF. The 82599 checks the source MAC
                # against every address of the pool, MACVLANs included, so they still pass.
                self._write_spoofchk(vf, False)
        return self._set_vf_macvlan(vf, index, mac)

    def _macvlan_share_allows(self, vf: int, cap: int) -> bool:
        """Whether untrusted ``vf`` may take one more MACVLAN slot: within its cap, and beyond
        its share only if the free slots still cover every other VF's unused share (item 7)."""
        held = [0] * len(self.vfinfo)
        for entry in self.vf_macvlans:
            if entry is not None:
                held[entry[0]] += 1
        if held[vf] >= cap:
            return False
        share = self._share(len(self.vf_macvlans), cap)
        if held[vf] < share:
            return True
        owed = sum(max(0, share - h) for u, h in enumerate(held) if u != vf)
        return self.vf_macvlans.count(None) - 1 >= owed

    def _h_api_negotiate(self, vf: int, msg: Message, buf: list[int]) -> bool:
        api = M.decode_api(msg)
        if api in self.SUPPORTED_APIS:
            self.vfinfo[vf].api = MboxApi(api)
            return True
        return False

    def _h_get_queues(self, vf: int, msg: Message, buf: list[int]) -> bool:
        info = self.vfinfo[vf]
        if info.api != MboxApi.API_20 and info.api not in APIS_11_UP:
            return False
        qpp = self.device.queues_per_pool()
        buf[M.IXGBE_VF_TX_QUEUES] = qpp
        buf[M.IXGBE_VF_RX_QUEUES] = qpp
        buf[M.IXGBE_VF_TRANS_VLAN] = 1 if (info.pf_vlan or info.pf_qos) else 0  # no DCB modelled
        buf[M.IXGBE_VF_DEF_QUEUE] = 0
        return True

    def _h_get_reta(self, vf: int, msg: Message, buf: list[int]) -> bool:
        info = self.vfinfo[vf]
        if not info.rss_query or info.api not in APIS_12_UP:
            return False
        qpp = self.device.queues_per_pool()
        reta = [i % qpp for i in range(M.RETA_ENTRIES)]  # ixgbe's default indirection table
        buf[1 : 1 + M.RETA_ENTRIES // 16] = M.pack_reta(reta)
        return True

    def _h_get_rss_key(self, vf: int, msg: Message, buf: list[int]) -> bool:
        info = self.vfinfo[vf]
        if not info.rss_query or info.api not in APIS_12_UP:
            return False
        buf[1 : 1 + M.IXGBE_RSS_KEY_SIZE // 4] = M.pack_rss_key(self.rss_key)
        return True

    def _h_update_xcast_mode(self, vf: int, msg: Message, buf: list[int]) -> bool:
        info = self.vfinfo[vf]
        mode = M.decode_xcast_mode(msg)
        if info.api == MboxApi.API_12:
            if mode == XcastMode.PROMISC:
                return False  # promiscuous came with 1.3
        elif info.api not in APIS_12_UP:
            return False
        if mode > XcastMode.MULTI and not info.trusted:
            mode = XcastMode.MULTI  # untrusted VFs are capped, silently
        if mode != info.xcast_mode:
            if mode == XcastMode.NONE:
                # Broadcast stays on (upstream since 2022: "fix bcast packets Rx on VF after promisc
                # removal").
                disable, enable = R.VMOLR_ROMPE | R.VMOLR_MPE | R.VMOLR_UPE | R.VMOLR_VPE, R.VMOLR_BAM
            elif mode == XcastMode.MULTI:
                disable, enable = R.VMOLR_MPE | R.VMOLR_UPE | R.VMOLR_VPE, R.VMOLR_BAM | R.VMOLR_ROMPE
            elif mode == XcastMode.ALLMULTI:
                disable, enable = R.VMOLR_UPE | R.VMOLR_VPE, R.VMOLR_BAM | R.VMOLR_ROMPE | R.VMOLR_MPE
            else:
                return False  # PROMISC: -EOPNOTSUPP on 82599 (and any unknown mode)
            self._w(R.VMOLR(vf), (self._r(R.VMOLR(vf)) & ~disable) | enable)
            info.xcast_mode = XcastMode(mode)
        buf[1] = int(mode)
        return True

    def _h_get_link_state(self, vf: int, msg: Message, buf: list[int]) -> bool:
        info = self.vfinfo[vf]
        if info.api not in APIS_12_UP:
            return False
        buf[1] = int(info.link_enable)
        return True

    def _h_get_pf_link_state(self, vf: int, msg: Message, buf: list[int]) -> bool:
        return False  # ixgbe_send_vf_link_status answers on E610 only: -EOPNOTSUPP on 82599

    def _h_features_negotiate(self, vf: int, msg: Message, buf: list[int]) -> bool:
        if self.vfinfo[vf].api != MboxApi.API_17:
            return False
        buf[1] &= IXGBE_SUPPORTED_FEATURES
        return True

    def _h_ipsec_add(self, vf: int, msg: Message, buf: list[int]) -> bool:
        # ixgbe_ipsec_vf_add_sa: -EACCES unless trusted *and* the "vf-ipsec" private flag is on;
        # the flag is off by default and this model has no IPsec offload to turn on.
        return False

    def _h_ipsec_del(self, vf: int, msg: Message, buf: list[int]) -> bool:
        # ixgbe_ipsec_vf_del_sa: untrusted -EPERM; an index in range whose SA is not in use is
        # silently accepted (the PF's reset already deleted it). No SA is ever in use here.
        if not self.vfinfo[vf].trusted:
            return False
        pfsa = buf[1]
        if pfsa < IXGBE_IPSEC_MAX_SA_COUNT:
            return True  # an Rx SA's index
        return (pfsa - IXGBE_IPSEC_MAX_SA_COUNT) & 0xFFFF < IXGBE_IPSEC_MAX_SA_COUNT  # a Tx SA's (u16)

    # ==========================================================================================
    # MAC filters (adapter->mac_table -> RAR/MPSAR)
    def _sync_mac_table(self) -> None:
        if self.mac_table[0] is not None:
            self.mac_table[0].pool = self.pf_pool
        for i in range(R.NUM_RAR):
            self._write_rar(i)

    def _write_rar(self, i: int) -> None:
        entry = self.mac_table[i]
        if entry is None:
            self._w(R.RAL(i), 0)
            self._w(R.RAH(i), 0)
            self._w(R.MPSAR_LO(i), 0)
            self._w(R.MPSAR_HI(i), 0)
            return
        bitmap = 1 << entry.pool
        self._w(R.MPSAR_LO(i), bitmap & M.U32)  # pool first, then the address (set_vmdq, set_rar)
        self._w(R.MPSAR_HI(i), bitmap >> 32)
        low, high = M.mac_to_words(entry.mac)
        self._w(R.RAL(i), low)
        self._w(R.RAH(i), high | R.RAH_AV)

    def _add_mac_filter(self, mac: bytes, pool: int) -> int:
        if not any(mac):
            return -1
        for i, entry in enumerate(self.mac_table):
            if entry is None:
                self.mac_table[i] = _MacEntry(bytes(mac), pool)
                self._write_rar(i)
                return i
        return -1

    def _del_mac_filter(self, mac: bytes, pool: int) -> int:
        if not any(mac):
            return -1
        for i, entry in enumerate(self.mac_table):
            if i and entry is not None and entry.mac == mac and entry.pool == pool:
                self.mac_table[i] = None
                self._write_rar(i)
                return 0
        return -1

    def _free_rars(self) -> int:
        return sum(1 for e in self.mac_table if e is None)

    def _set_vf_mac(self, vf: int, mac: bytes) -> bool:
        info = self.vfinfo[vf]
        self._del_mac_filter(info.mac, vf)
        if self._add_mac_filter(mac, vf) >= 0:
            info.mac = bytes(mac)
            return True
        info.mac = bytes(6)
        return False

    def _set_vf_macvlan(self, vf: int, index: int, mac: bytes | None) -> bool:
        if index <= 1:  # one ixgbe_del_mac_filter(entry MAC, vf) per entry of the VF's list
            for slot, entry in enumerate(self.vf_macvlans):
                if entry is not None and entry[0] == vf:
                    self.vf_macvlans[slot] = None
                    self._del_mac_filter(entry[1], vf)
        if not index or mac is None:
            return True
        try:
            slot = self.vf_macvlans.index(None)
        except ValueError:
            return False  # -ENOSPC
        if self._add_mac_filter(mac, vf) < 0:
            return False
        self.vf_macvlans[slot] = (vf, bytes(mac))
        return True

    # ==========================================================================================
    # VLAN filters (VFTA + VLVF/VLVFB, spec §5.5)
    def _find_vlvf_slot(self, vid: int) -> int:
        if vid == 0:
            return 0  # VLVF[0] is pinned to VID 0
        want = R.VLVF_VIEN | vid
        first_empty = 0
        for i in range(R.NUM_VLVF - 1, 0, -1):
            bits = self._r(R.VLVF(i))
            if bits == want:
                return i
            if not first_empty and not bits:
                first_empty = i
        return first_empty if first_empty else -1

    def _set_vfta(self, vid: int, pool: int, on: bool) -> bool:
        if not 0 <= vid <= R.VLAN_VID_MASK or not 0 <= pool < R.MAX_POOLS:
            return False
        regidx, bit = vid // 32, 1 << (vid % 32)
        vfta = self._r(R.VFTA(regidx))
        delta = bit & (~vfta if on else vfta)
        vfta ^= delta
        if self._r(R.VT_CTL) & R.VT_CTL_VT_ENABLE:
            slot = self._find_vlvf_slot(vid)
            if slot < 0:
                return False
            word = slot * 2 + pool // 32
            bits = self._r(R.VLVFB(word)) | (1 << (pool % 32))
            if not on:
                bits ^= 1 << (pool % 32)
                if not bits and not self._r(R.VLVFB(word ^ 1)):
                    # Clear VFTA first, then the VLVF entry, or stray frames leak to the default pool.
                    if delta:
                        self._w(R.VFTA(regidx), vfta)
                    self._w(R.VLVF(slot), 0)
                    self._w(R.VLVFB(word), 0)
                    return True
                delta = 0  # other pools still use the VLAN: keep its VFTA bit
            self._w(R.VLVFB(word), bits)
            self._w(R.VLVF(slot), R.VLVF_VIEN | vid)
        if delta:
            self._w(R.VFTA(regidx), vfta)
        return True

    def _set_vf_vlan(self, add: bool, vid: int, vf: int) -> bool:
        # If the PF itself uses the VLAN, make sure its pool keeps a VLVF entry too.
        if add and vid in self.active_vlans and not self._set_vfta(vid, self.pf_pool, True):
            return False
        ok = self._set_vfta(vid, vf, add)
        if (not add or not ok) and (vid in self.active_vlans or self.vlan_promisc):
            self._update_pf_promisc_vlvf(vid)
        return ok

    def _update_pf_promisc_vlvf(self, vid: int) -> None:
        """``ixgbe_update_pf_promisc_vlvf``: a VLVF entry only the PF's pool is left in is
        disabled, so the VLAN's frames fall to the default pool (the PF) and the entry is free."""
        want = R.VLVF_VIEN | vid
        slot = next((i for i in range(R.NUM_VLVF - 1, 0, -1) if self._r(R.VLVF(i)) == want), 0)
        if not slot:
            return
        pool = self.pf_pool
        word = 2 * slot + pool // 32
        if self._r(R.VLVFB(word)) & ~(1 << (pool % 32)) or self._r(R.VLVFB(word ^ 1)):
            return
        if not self.vlan_promisc:
            self._w(R.VLVFB(word), 0)
        self._w(R.VLVF(slot), 0)

    def _clear_vf_vlans(self, vf: int) -> None:
        """``ixgbe_clear_vf_vlans``: the VF leaves every VLVF entry. An entry other pools still
        use just loses the VF's bit; one only the PF is left in is disabled (the PF's VLAN frames
        then fall to its default pool; VFTA kept); an empty one goes, VFTA bit first."""
        pool = self.pf_pool
        pf_word, pf_bit = pool // 32, 1 << (pool % 32)
        mask = 1 << (vf % 32)
        for i in range(R.NUM_VLVF - 1, -1, -1):
            word = i * 2 + vf // 32
            vlvfb = self._r(R.VLVFB(word))
            if not vlvfb & mask:
                continue
            vlvfb ^= mask
            bits = [0, 0]
            bits[word % 2], bits[(word % 2) ^ 1] = vlvfb, self._r(R.VLVFB(word ^ 1))
            if bits[pf_word ^ 1] or bits[pf_word] & ~pf_bit:
                self._w(R.VLVFB(word), vlvfb)  # other pools remain: just remove ourselves
                continue
            if not bits[0] and not bits[1]:
                vlvf = self._r(R.VLVF(i))
                if not vlvf:
                    self._w(R.VLVFB(word), vlvfb)
                    continue
                vid = vlvf & R.VLVF_VLANID_MASK
                vfta = self._r(R.VFTA(vid // 32))
                if vfta & (1 << (vid % 32)):
                    self._w(R.VFTA(vid // 32), vfta ^ (1 << (vid % 32)))
            self._w(R.VLVF(i), 0)
            self._w(R.VLVFB(word), vlvfb if self.vlan_promisc else 0)

    def _vlan_slot_available(self, vid: int, releasing: int) -> bool:
        """Whether adding ``vid`` can find a VLVF slot (counting the slot ``releasing`` frees)."""
        if vid == 0 or self._find_vlvf_slot(vid) >= 0:
            return True
        if releasing:
            slot = self._find_vlvf_slot(releasing)
            if slot > 0:
                used = self._r(R.VLVFB(2 * slot)) | self._r(R.VLVFB(2 * slot + 1)) << 32
                return bin(used).count("1") == 1
        return False

    def _set_vmvir(self, vf: int, vid: int, qos: int) -> None:
        self._w(R.VMVIR(vf), vid | (qos << R.VLAN_PRIO_SHIFT) | R.VMVIR_VLANA_DEFAULT)

    def _set_vmolr(self, vf: int, aupe: bool) -> None:
        vmolr = self._r(R.VMOLR(vf)) | R.VMOLR_BAM
        vmolr = vmolr | R.VMOLR_AUPE if aupe else vmolr & ~R.VMOLR_AUPE
        self._w(R.VMOLR(vf), vmolr)

    def _write_spoofchk(self, vf: int, on: bool) -> None:
        reg = R.PFVFSPOOF(vf // 8)
        bits = (1 << (vf % 8)) | (1 << (vf % 8 + R.SPOOF_VLANAS_SHIFT))
        val = self._r(reg)
        self._w(reg, val | bits if on else val & ~bits)

    # ==========================================================================================
    # multicast (MTA) and the PF's receive mode
    def _set_rx_mode(self) -> None:
        """``ixgbe_set_rx_mode``: FCTRL, the PF pool's VMOLR, and the MTA rebuilt from scratch."""
        fctrl = R.FCTRL_BAM | R.FCTRL_DPF | R.FCTRL_PMCF
        if self.promisc:  # IFF_PROMISC also drops NETIF_F_HW_VLAN_CTAG_FILTER: VLAN promiscuous
            fctrl |= R.FCTRL_UPE | R.FCTRL_MPE
        elif self.allmulti:
            fctrl |= R.FCTRL_MPE
        self._w(R.FCTRL, fctrl)
        shadow = [0] * R.NUM_MTA
        in_use = 0
        for mac in self.mc_list:
            v = M.mta_vector(mac, MC_FILTER_TYPE)
            shadow[v >> 5] |= 1 << (v & 0x1F)
            in_use += 1
        if self.vfinfo:
            pool = self.pf_pool
            vmolr = self._r(R.VMOLR(pool)) & ~(R.VMOLR_ROMPE | R.VMOLR_MPE | R.VMOLR_ROPE)
            vmolr |= R.VMOLR_BAM | R.VMOLR_AUPE
            if self.mc_list:
                vmolr |= R.VMOLR_ROMPE
            if self.promisc or self.allmulti:
                vmolr |= R.VMOLR_MPE
            self._w(R.VMOLR(pool), vmolr)
        # ixgbe_restore_vf_multicasts: every VF's hashes, and ROMPE iff it has some.
        for vf, info in enumerate(self.vfinfo):
            for h in info.mc_hashes:
                shadow[(h >> 5) & 0x7F] |= 1 << (h & 0x1F)
                in_use += 1
            vmolr = self._r(R.VMOLR(vf))
            self._w(R.VMOLR(vf), vmolr | R.VMOLR_ROMPE if info.mc_hashes else vmolr & ~R.VMOLR_ROMPE)
        for i, word in enumerate(shadow):
            self._w(R.MTA(i), word)
        self._w(R.MCSTCTRL, (R.MCSTCTRL_MFE | MC_FILTER_TYPE) if in_use else MC_FILTER_TYPE)
        if self.promisc:
            self._vlan_promisc_enable()
        else:
            self._vlan_promisc_disable()

    def _vlan_promisc_enable(self) -> None:
        """``ixgbe_vlan_promisc_enable``: without VFs VLAN filtering goes off; with them it stays
        on (pools are chosen by VLAN) and the PF joins every VLAN instead: VFTA all ones and
        the PF's pool bit in every VLVF entry but VID 0's."""
        vlnctrl = self._r(R.VLNCTRL)
        if not self.vfinfo:
            self._w(R.VLNCTRL, vlnctrl & ~R.VLNCTRL_VFE)
            return
        self._w(R.VLNCTRL, vlnctrl | R.VLNCTRL_VFE)
        if self.vlan_promisc:
            return
        self.vlan_promisc = True
        pool = self.pf_pool
        for i in range(R.NUM_VLVF - 1, 0, -1):
            reg = R.VLVFB(2 * i + pool // 32)
            self._w(reg, self._r(reg) | 1 << (pool % 32))
        for i in range(R.NUM_VFTA):
            self._w(R.VFTA(i), M.U32)

    def _vlan_promisc_disable(self) -> None:
        """``ixgbe_vlan_promisc_disable`` + ``ixgbe_scrub_vfta``: filtering on, the PF leaves the
        VLANs it does not use, and the VFTA is rebuilt from the VLVF entries and its own VLANs."""
        self._w(R.VLNCTRL, self._r(R.VLNCTRL) | R.VLNCTRL_VFE)
        if not self.vfinfo or not self.vlan_promisc:
            return
        self.vlan_promisc = False
        pool = self.pf_pool
        vfta = [0] * R.NUM_VFTA
        for i in range(R.NUM_VLVF - 1, 0, -1):
            vlvf = self._r(R.VLVF(i))
            vid = vlvf & R.VLAN_VID_MASK
            if vlvf:
                vfta[vid // 32] |= 1 << (vid % 32)
                if vid in self.active_vlans:
                    continue
            reg = R.VLVFB(2 * i + pool // 32)
            self._w(reg, self._r(reg) & ~(1 << (pool % 32)))
        for vid in self.active_vlans:
            vfta[vid // 32] |= 1 << (vid % 32)
        for i, word in enumerate(vfta):
            self._w(R.VFTA(i), word)

    # ==========================================================================================
    # SET_LPE and the 82599 jumbo rule
    def _set_vf_lpe(self, vf: int, max_frame: int) -> bool:
        if not ETH_MIN_MTU <= max_frame <= R.MAX_JUMBO_FRAME_SIZE:
            return False  # "VF max_frame out of range", before the 82599 rule touches VFRE
        info = self.vfinfo[vf]
        pf_jumbo = self._pf_max_frame() > ETH_FRAME_LEN
        if info.api in APIS_11_UP and pf_jumbo:
            err = False
        else:
            err = pf_jumbo or max_frame > ETH_FRAME_LEN + R.ETH_FCS_LEN
        reg, bit = vf // 32, 1 << (vf % 32)
        vfre = self._r(R.VFRE(reg))
        self._w(R.VFRE(reg), vfre & ~bit if err else vfre | bit)
        if err:
            return False
        max_frs = (self._r(R.MAXFRS) & R.MHADD_MFS_MASK) >> R.MHADD_MFS_SHIFT
        if max_frs < max_frame:
            self._w(R.MAXFRS, (self._r(R.MAXFRS) & ~R.MHADD_MFS_MASK) | (max_frame << R.MHADD_MFS_SHIFT))
        return True

    # ==========================================================================================
    # the administrator's controls
    def _check_vf(self, vf: object) -> None:
        if not isinstance(vf, int) or isinstance(vf, bool) or not 0 <= vf < len(self.vfinfo):
            allowed = f"0..{len(self.vfinfo) - 1}" if self.vfinfo else "none: SR-IOV is not enabled"
            raise ConfigError(f"{self.function.name}: no VF {vf!r} (allowed: {allowed})")

    def set_vf(
        self,
        vf: int,
        *,
        mac: str | bytes | None = None,
        vlan: int | None = None,
        qos: int | None = None,
        spoofchk: bool | None = None,
        trust: bool | None = None,
        state: str | None = None,
        query_rss: bool | None = None,
    ) -> None:
        """``ip link set dev PF vf N mac M vlan V qos Q spoofchk on trust off state auto``.

        Every argument is checked before anything changes; an error names the argument
        and what is allowed. A MAC takes effect in the VF at its next reset ("Reload the
        VF driver"); trust and state changes make the VF reset (ping without CTS).
        ``state="enable"`` is accepted and ignored, as ixgbe does ("link state 1 - not
        supported"): only ``auto`` and ``disable`` change the VF's link.
        """
        self._check_vf(vf)
        info = self.vfinfo[vf]
        new_mac = None
        if mac is not None:
            new_mac = M.parse_mac(mac)
            if any(new_mac) and not M.is_valid_ether_addr(new_mac):
                raise ConfigError(
                    f"VF {vf}: MAC {M.format_mac(new_mac)} is multicast; allowed: a unicast MAC, "
                    "or 00:00:00:00:00:00 to remove the administrator's MAC"
                )
            if any(new_mac) and not self._free_rars() and not any(info.mac):
                raise ConfigError(f"VF {vf}: no free receive-address (RAR) entry for {M.format_mac(new_mac)}")
        for name, value, top in (("vlan", vlan, R.VLAN_VID_MASK), ("qos", qos, 7)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                      or not 0 <= value <= top):  # fmt: skip
                raise ConfigError(f"VF {vf}: {name} must be an int in 0..{top}, got {value!r}")
        for name, value in (("spoofchk", spoofchk), ("trust", trust), ("query_rss", query_rss)):
            if value is not None and not isinstance(value, bool):
                raise ConfigError(f"VF {vf}: {name} must be True or False, got {value!r}")
        if state is not None and state not in LINK_STATES:
            raise ConfigError(f"VF {vf}: state must be one of {', '.join(LINK_STATES)}; got {state!r}")
        new_vlan = info.pf_vlan if vlan is None else vlan
        new_qos = (info.pf_qos if vlan is None else 0) if qos is None else qos
        vlan_change = (vlan is not None or qos is not None) and (new_vlan, new_qos) != (
            info.pf_vlan,
            info.pf_qos,
        )
        if vlan_change and new_vlan and not self._vlan_slot_available(new_vlan, info.pf_vlan):
            raise ConfigError(f"VF {vf}: no free VLVF entry for VLAN {new_vlan} (63 VLANs in use)")

        # -- everything is valid: apply, in the order ip link does ----------------------------
        if new_mac is not None:
            if any(new_mac):
                self._evict_mac(new_mac, vf)
                if self._set_vf_mac(vf, new_mac):
                    info.pf_set_mac = True
            elif any(info.mac):
                self._del_mac_filter(info.mac, vf)
                info.pf_set_mac = False
                info.mac = bytes(6)
        if vlan_change:
            if info.pf_vlan or info.pf_qos:
                self._disable_port_vlan(vf)
            if new_vlan or new_qos:
                self._enable_port_vlan(vf, new_vlan, new_qos)
        if spoofchk is not None:
            info.spoofchk = spoofchk
            self._write_spoofchk(vf, spoofchk)
        if query_rss is not None:
            info.rss_query = query_rss
        if trust is not None and trust != info.trusted:
            info.trusted = trust
            if not trust:
                self._revoke_trust(vf)
            info.clear_to_send = False  # reset the VF to reconfigure features
            self.ping_vf(vf)
        if state is not None and state != "enable":  # "enable": "not supported", nothing changes
            self._set_vf_link_state(vf, state)

    def _evict_mac(self, mac: bytes, owner: int) -> None:
        """Model decision (issue 17 item 5): the administrator's MAC wins. Every other VF's
        filter for ``mac`` that the administrator did not set (a MAC or MACVLAN the VF asked
        for) is removed and counted, and that VF loses clear-to-send: its next request is
        NACKed and it resets, without the address."""
        for vf, info in enumerate(self.vfinfo):
            if vf == owner:
                continue
            evicted = 0
            if info.mac == mac and not info.pf_set_mac:
                self._del_mac_filter(mac, vf)
                info.mac = bytes(6)
                evicted += 1
            for slot, entry in enumerate(self.vf_macvlans):
                if entry == (vf, mac):
                    self.vf_macvlans[slot] = None
                    self._del_mac_filter(mac, vf)
                    evicted += 1
            if evicted:
                info.counters["evicted_macs"] += evicted
                info.clear_to_send = False
                self.ping_vf(vf)

    def _revoke_trust(self, vf: int) -> None:
        """Model decision (issue 17 item 6): what trust allowed is taken back by the PF itself,
        not left to the VF's reset (a hostile VF ignores the ping): its MACVLANs and VLAN
        filters go (as the reset would remove them), its xcast mode is capped at MULTI, and
        anti-spoofing is back as the administrator set it."""
        info = self.vfinfo[vf]
        self._set_vf_macvlan(vf, 0, None)
        self._clear_vf_vlans(vf)
        self._set_vf_vlan(True, info.pf_vlan, vf)
        if info.xcast_mode > XcastMode.MULTI:
            vmolr = self._r(R.VMOLR(vf)) & ~(R.VMOLR_MPE | R.VMOLR_UPE | R.VMOLR_VPE)
            self._w(R.VMOLR(vf), vmolr | R.VMOLR_BAM | R.VMOLR_ROMPE)
            info.xcast_mode = XcastMode.MULTI
        self._write_spoofchk(vf, info.spoofchk)

    def _enable_port_vlan(self, vf: int, vid: int, qos: int) -> None:
        info = self.vfinfo[vf]
        self._set_vf_vlan(True, vid, vf)
        self._set_vf_vlan(False, 0, vf)  # revoke tagless access via VLAN 0
        self._set_vmvir(vf, vid, qos)
        self._set_vmolr(vf, aupe=False)
        info.pf_vlan, info.pf_qos = vid, qos

    def _disable_port_vlan(self, vf: int) -> None:
        info = self.vfinfo[vf]
        self._set_vf_vlan(False, info.pf_vlan, vf)
        self._set_vf_vlan(True, 0, vf)  # restore tagless access via VLAN 0
        self._w(R.VMVIR(vf), 0)
        self._set_vmolr(vf, aupe=True)
        info.pf_vlan, info.pf_qos = 0, 0

    def vf_config(self, vf: int) -> dict[str, object]:
        """What ``ip link show PF`` prints for VF ``vf``."""
        self._check_vf(vf)
        info = self.vfinfo[vf]
        return {
            "vf": vf,
            "mac": M.format_mac(info.mac),
            "vlan": info.pf_vlan,
            "qos": info.pf_qos,
            # The hardware's state: upstream reports the setting even after a MACVLAN turned it off.
            "spoofchk": bool(self._r(R.PFVFSPOOF(vf // 8)) >> (vf % 8) & 1),
            "trust": info.trusted,
            "state": info.link_state,
            "query_rss": info.rss_query,
            "api": info.api.version,
            "xcast_mode": info.xcast_mode.name,
            "clear_to_send": info.clear_to_send,
        }

    def set_mtu(self, mtu: int) -> None:
        """``ip link set dev PF mtu M`` (68..9710); the port reinitialises, VFs reset.

        On 82599 a jumbo PF keeps API-1.0 VFs from receiving (the jumbo rule).
        """
        if not isinstance(mtu, int) or isinstance(mtu, bool) or not ETH_MIN_MTU <= mtu <= MAX_MTU:
            raise ConfigError(
                f"{self.function.name}: MTU must be an int in {ETH_MIN_MTU}..{MAX_MTU}, got {mtu!r}"
            )
        if mtu == self.mtu:
            return
        self.mtu = mtu
        if self.is_up:
            self.reset()

    def set_promisc(self, on: bool) -> None:
        """``ip link set dev PF promisc on|off``."""
        if not isinstance(on, bool):
            raise ConfigError(f"promisc must be True or False, got {on!r}")
        self.promisc = on
        if self.is_up:
            self._set_rx_mode()

    def set_allmulti(self, on: bool) -> None:
        """``ip link set dev PF allmulticast on|off``."""
        if not isinstance(on, bool):
            raise ConfigError(f"allmulti must be True or False, got {on!r}")
        self.allmulti = on
        if self.is_up:
            self._set_rx_mode()

    def set_multicast(self, addresses: Sequence[str | bytes]) -> None:
        """The PF's own multicast list (joined groups); merged with the VFs' hashes into the MTA."""
        macs = M.parse_mac_list(addresses, "multicast addresses")
        for m in macs:
            if not m[0] & 1:
                raise ConfigError(f"{M.format_mac(m)} is not a multicast address")
        self.mc_list = macs
        if self.is_up:
            self._set_rx_mode()

    def set_link(self, up: bool) -> None:
        """``ip link set dev PF up|down``: down resets the port and drops every VF's CTS.

        The VFs are pinged (no CTS) and see the PF reset; after ``up`` they re-initialise.
        """
        if not isinstance(up, bool):
            raise ConfigError(f"link must be True or False, got {up!r}")
        if not self.loaded:
            raise DriverStateError(f"{self.function.name}: the PF driver is not loaded")
        if up and not self.is_up:
            self._up()
        elif not up and self.is_up:
            self._down()

    def stats(self) -> dict[str, int]:
        """Mailbox counters of the PF side, summed over VFs."""
        out = dict.fromkeys(VF_COUNTERS, 0)
        for info in self.vfinfo:
            for k, v in info.counters.items():
                out[k] += v
        return {f"mbx_{k}": v for k, v in out.items()}


def _shown_len(msg: Message, reply: bool) -> int:
    """How many words of a message the transcript shows (what the opcode defines)."""
    spec = M.OPCODES.get(msg.opcode)
    if spec is None:
        return 1
    if msg.opcode == M.IXGBE_VF_SET_MULTICAST:
        return 1 + (min(msg.info, M.IXGBE_MAX_VF_MC_ENTRIES) + 1) // 2
    return spec.reply_len if reply else spec.request_len


def _shown(msg: Message, words: Sequence[int], reply: bool) -> list[int]:
    """Known opcodes: their defined words (stale buffer words are not part of the message).
    Unknown ones: every word up to the last non-zero one, so garbage shows in full."""
    n = _shown_len(msg, reply)
    return [int(w) for w in words[:n]] if M.OPCODES.get(msg.opcode) else _trim(words, n)


def _trim(words: Sequence[int], length: int) -> list[int]:
    """The first ``length`` words, but never hide a non-zero word (garbage shows in full)."""
    last = max((i for i, w in enumerate(words) if w), default=0)
    return [int(w) for w in words[: max(length, last + 1, 1)]]


_HANDLERS = {
    M.IXGBE_VF_SET_MAC_ADDR: PfDriver._h_set_mac_addr,
    M.IXGBE_VF_SET_MULTICAST: PfDriver._h_set_multicast,
    M.IXGBE_VF_SET_VLAN: PfDriver._h_set_vlan,
    M.IXGBE_VF_SET_LPE: PfDriver._h_set_lpe,
    M.IXGBE_VF_SET_MACVLAN: PfDriver._h_set_macvlan,
    M.IXGBE_VF_API_NEGOTIATE: PfDriver._h_api_negotiate,
    M.IXGBE_VF_GET_QUEUES: PfDriver._h_get_queues,
    M.IXGBE_VF_GET_RETA: PfDriver._h_get_reta,
    M.IXGBE_VF_GET_RSS_KEY: PfDriver._h_get_rss_key,
    M.IXGBE_VF_UPDATE_XCAST_MODE: PfDriver._h_update_xcast_mode,
    M.IXGBE_VF_GET_LINK_STATE: PfDriver._h_get_link_state,
    M.IXGBE_VF_IPSEC_ADD: PfDriver._h_ipsec_add,
    M.IXGBE_VF_IPSEC_DEL: PfDriver._h_ipsec_del,
    M.IXGBE_VF_GET_PF_LINK_STATE: PfDriver._h_get_pf_link_state,
    M.IXGBE_VF_FEATURES_NEGOTIATE: PfDriver._h_features_negotiate,
}
