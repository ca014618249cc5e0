"""The VF driver: ixgbevf for the 82599 VF (spec §4), through its own BAR0 and the mailbox.

`VfNic` is what a guest sees of its VF: a netdev-like object (``mac``, ``link_up``, ``mtu``,
VLANs, multicast list, rx mode) whose every global setting goes to the PF as a mailbox
message. It binds by device id (0x10ED), resets the function and talks to the PF only
through `VfMailbox` (the legacy handshake). Every wait advances the simulation clock.

Link and PF-reset detection follow ``ixgbevf_check_mac_link_vf``: the mailbox vector only
flags "check the link" and schedules the service task; the task reads VFLINKS and word 0 of
the mailbox buffer (CTS = the PF is talking to us). A lost CTS (the PF reset, or the
administrator changed trust or state) makes the driver reset and replay its configuration
(MAC, VLANs, multicast list, MTU, rx mode), as ``ixgbevf_reinit_locked`` does.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from sriov import kernels
from sriov.drivers import coalesce
from sriov.drivers import mailbox as M
from sriov.drivers.mailbox import MboxApi, Message, QueueInfo, VfMailbox, XcastMode
from sriov.drivers.napi import Napi
from sriov.drivers.ring_args import poll_budget
from sriov.errors import ConfigError, DriverStateError, MailboxError
from sriov.hw import regs as R
from sriov.hw.clock import EventHandle, SimClock
from sriov.hw.device import VfFunction
from sriov.memory import GuestMemory

ETH_MIN_MTU = 68
ETH_DATA_LEN = 1500
MAX_MTU = R.MAX_JUMBO_FRAME_SIZE - (R.ETH_HLEN + R.ETH_FCS_LEN)  # 9710
LEGACY_82599_MAX_MTU = ETH_DATA_LEN + R.ETH_FCS_LEN  # 1504 with API 1.0 (spec §2.4)
IXGBE_VF_IRQ_CLEAR_MASK = 7
RESET_DELAY_NS = 10_000_000  # mdelay(10) between the RESET message and reading the reply
LINK_SETTLE_NS = 100_000  # 82599: re-read VFLINKS 5 x 100 us
WATCHDOG_NS = 2_000_000_000  # service timer: every 2 s
RESET_HOLDOFF_NS = 10_000_000_000  # no reset within 10 s of the last one
BUSY_RETRY_NS = 100_000
QUEUE_VECTOR = 0
MBX_VECTOR = 1  # the "other" vector comes after the queue vector, as in ixgbevf

log = logging.getLogger("sriov.drivers")  # the drivers' kernel-log lines (ixgbe and ixgbevf)


def _ring_module() -> Any | None:
    """``sriov.drivers.rings`` if the datapath build has it (guarded: it is written in parallel)."""
    if importlib.util.find_spec("sriov.drivers.rings") is None:
        return None
    return importlib.import_module("sriov.drivers.rings")


def _is_link_local(mac: bytes) -> bool:
    """01:80:C2:00:00:0x (``is_link_local_ether_addr``), which ixgbevf never hashes."""
    return mac[:5] == b"\x01\x80\xc2\x00\x00" and mac[5] & 0xF0 == 0


class VfNic(kernels.impl.NicState):
    """The ixgbevf driver bound to one VF, inside a VM."""

    DEVICE_IDS = (R.DEV_ID_82599_VF,)
    NUM_VECTORS = 3  # MSI-X table size of a VF (2 queue vectors + mailbox)
    # ixgbevf_negotiate_api: newest first, down to the first the PF accepts (a Linux PF
    # refuses 1.5, the ESX-mailbox version, and answers 1.7).
    API_LIST = (
        MboxApi.API_17, MboxApi.API_16, MboxApi.API_15, MboxApi.API_14,
        MboxApi.API_13, MboxApi.API_12, MboxApi.API_11, MboxApi.API_10,
    )  # fmt: skip
    FEATURES = M.IXGBEVF_PF_SUP_IPSEC | M.IXGBEVF_PF_SUP_ESX_MBX  # IXGBEVF_SUPPORTED_FEATURES

    def __init__(
        self, function: VfFunction, memory: GuestMemory, clock: SimClock, seed: int = 0, name: str = "eth0"
    ) -> None:
        if function.device_id not in self.DEVICE_IDS:
            raise ConfigError(f"ixgbevf does not drive device id {function.device_id:#06x}")
        self.function = function
        self.memory = memory
        self.clock = clock
        self.name = name
        self.mbx = VfMailbox(function, clock)
        self._rng = np.random.default_rng(seed)
        self.perm_addr = bytes(6)
        self._mac = bytes(6)
        self.mc_filter_type = 0
        self.api = MboxApi.API_10
        self.pf_features = 0  # what FEATURES_NEGOTIATE (or the API version) says the PF offers
        self.queues = QueueInfo(1, 1, 0, 0)
        self.adapter_stopped = True
        self.is_up = False
        self._link_up = False
        self.link_state = True  # the administrator's link_enable, from GET_LINK_STATE
        self.get_link_status = True
        self.last_reset = -RESET_HOLDOFF_NS
        self.reset_requested = False
        self._cts_lost = False
        self.vlans: list[int] = []
        self.mc_addrs: list[bytes] = []
        self.uc_addrs: list[bytes] = []
        self.mtu = ETH_DATA_LEN
        self.promisc = False
        self.allmulti = False
        self.xcast_mode: XcastMode | None = None
        self.rx_ring: Any | None = None
        self.tx_ring: Any | None = None
        self.rx_count = R.DEFAULT_RXD  # receive descriptors (ethtool -G rx), used at the next open
        self.rx_usecs = coalesce.ADAPTIVE  # ixgbevf's default rx-usecs (1: adaptive, starts at 20K/s)
        self._eims = (1 << QUEUE_VECTOR) | (1 << MBX_VECTOR)
        self._mbx_vector = MBX_VECTOR
        self._busy = 0
        self._service_handle: EventHandle | None = None
        self._timer_handle: EventHandle | None = None
        self._irq_counts = [0] * self.NUM_VECTORS
        self._stat_last: dict[int, int] = {}
        self._stat_total: dict[int, int] = {}
        self.counters = {"resets": 0, "reset_failures": 0, "link_changes": 0, "mbx_errors": 0}
        self.messages: list[str] = []  # what the driver would print to the kernel log
        self.napi = Napi(self)  # the queue vector's poll cycle (sriov/drivers/napi.py)
        self.on_receive: Any = None  # the guest stack's hand-off: callable(Batch), or None for rx_poll

    def __repr__(self) -> str:
        return f"<VfNic {self.name} on {self.function.name} mac={self.mac} up={self.is_up}>"

    # ==========================================================================================
    # what the guest sees
    @property
    def mac(self) -> str:
        """The interface's MAC address, ``02:..`` style."""
        return M.format_mac(self._mac)

    @property
    def link_up(self) -> bool:
        """Carrier: interface up, PF talking (CTS), physical link up, not administratively disabled."""
        return self.is_up and self._link_up and self.link_state

    def _log(self, text: str, level: int = logging.INFO) -> None:
        """A kernel-log line of ixgbevf: kept in ``messages`` and sent to the ``sriov.drivers`` logger."""
        self.messages.append(f"[{self.clock.now / 1e9:12.6f}] ixgbevf {self.name}: {text}")
        log.log(level, "ixgbevf %s: %s", self.name, text)

    def interrupts(self) -> dict[str, int]:
        """Interrupts taken per vector, as /proc/interrupts names them."""
        return {
            f"{self.name}-TxRx-0": self._irq_counts[QUEUE_VECTOR],
            self.name: self._irq_counts[self._mbx_vector],
        }

    # ==========================================================================================
    # probe / remove
    def probe(self) -> None:
        """``ixgbevf_probe`` / ``ixgbevf_sw_init``: reset, negotiate, learn the MAC, get queues.

        If the PF is not up the reset fails: the driver still binds (with a random MAC),
        but `up` will refuse until the PF is up.
        """
        with self._busy_section():
            if not self._reset_hw():
                self._log("PF still in reset state.  Is the PF interface up?")
            else:
                self._init_hw()
                self._negotiate_api()
                if not any(self._mac):
                    self._log("MAC address not assigned by administrator.")
            if not M.is_valid_ether_addr(self._mac):
                self._log("Assigning random MAC address")
                self._mac = self._random_mac()
                self.perm_addr = self._mac
            if not self.adapter_stopped:
                self._get_queues()
            self.last_reset = self.clock.now

    def _random_mac(self) -> bytes:
        """``eth_random_addr``: random, locally administered, unicast (seeded: deterministic)."""
        raw = bytearray(int(b) for b in self._rng.integers(0, 256, 6))
        raw[0] = (raw[0] & 0xFE) | 0x02
        return bytes(raw)

    def remove(self) -> None:
        """``ixgbevf_remove``: close if open, stop timers, release the vectors."""
        if self.is_up:
            self.down()
        self._cancel_timers()

    # ==========================================================================================
    # reset_hw and friends (spec §4.2)
    def _stop_adapter(self) -> None:
        fn = self.function
        self.adapter_stopped = True
        fn.write32(R.VTEIMC, IXGBE_VF_IRQ_CLEAR_MASK)
        fn.read32(R.VTEICR)
        for q in range(max(1, min(self.queues.tx_queues, R.VF_MAX_QUEUES))):
            fn.write32(R.VFTXDCTL(q), R.TXDCTL_SWFLSH)
            fn.write32(R.VFRXDCTL(q), fn.read32(R.VFRXDCTL(q)) & ~R.RXDCTL_ENABLE)

    def _reset_hw(self) -> bool:
        """``ixgbevf_reset_hw_vf``; False when the PF is still in reset or did not answer."""
        self._stop_adapter()
        self.api = MboxApi.API_10
        self.mbx.reset_params()
        self.function.write32(R.VFCTRL, R.CTRL_RST)
        timeout = M.IXGBE_VF_INIT_TIMEOUT
        while self.mbx.check_for_rst() and timeout:  # cannot reset while RSTI/RSTD are asserted
            timeout -= 1
            self.clock.advance(M.IXGBE_VF_INIT_DELAY_NS)
        if not timeout:
            self.counters["reset_failures"] += 1
            return False
        self.mbx.timeout = M.IXGBE_VF_MBX_INIT_TIMEOUT
        try:
            self.mbx.write(M.reset_request().words())
            self.clock.advance(RESET_DELAY_NS)
            reply = Message.from_words(self.mbx.read_posted(M.IXGBE_VF_PERMADDR_MSG_LEN))
        except MailboxError as exc:
            self._log(f"reset: {exc}")
            self.counters["reset_failures"] += 1
            return False
        w0 = reply.word0
        if w0 not in (
            M.IXGBE_VF_RESET | M.IXGBE_VT_MSGTYPE_SUCCESS,
            M.IXGBE_VF_RESET | M.IXGBE_VT_MSGTYPE_FAILURE,
        ):
            self.counters["reset_failures"] += 1
            return False
        decoded = M.decode_reset_reply(reply)
        if decoded.ack:
            self.perm_addr = decoded.mac
        self.mc_filter_type = decoded.mc_filter_type
        self.counters["resets"] += 1
        return True

    def _init_hw(self) -> None:
        """``init_hw``: start the adapter; the MAC in use becomes the permanent one."""
        self.adapter_stopped = False
        self._mac = self.perm_addr

    def _negotiate_api(self) -> None:
        for api in self.API_LIST:
            try:
                reply = self.mbx.transact(M.api_negotiate(api))
            except MailboxError:
                self.counters["mbx_errors"] += 1
                continue
            if reply.word0 & ~M.IXGBE_VT_MSGTYPE_CTS == M.IXGBE_VF_API_NEGOTIATE | M.IXGBE_VT_MSGTYPE_SUCCESS:
                self.api = api
                break
        self._set_features()

    def _set_features(self) -> None:
        """``ixgbevf_set_features``: FEATURES_NEGOTIATE on API 1.7; 1.4 implies IPsec, 1.5 the
        ESX mailbox. A Linux PF never grants the ESX mailbox, so the legacy handshake stays."""
        self.pf_features = 0
        if self.api == MboxApi.API_17:
            try:
                reply = self.mbx.transact(M.features_negotiate(self.FEATURES))
            except MailboxError:
                self.counters["mbx_errors"] += 1
            else:
                self.pf_features = 0 if reply.nacked else M.decode_features(reply)
        elif self.api == MboxApi.API_14:
            self.pf_features = M.IXGBEVF_PF_SUP_IPSEC
        elif self.api == MboxApi.API_15:
            self.pf_features = M.IXGBEVF_PF_SUP_ESX_MBX

    def _get_queues(self) -> None:
        if self.api < MboxApi.API_11 or self.api == MboxApi.API_20:
            return
        try:
            reply = self.mbx.transact(M.get_queues())
        except MailboxError:
            self.counters["mbx_errors"] += 1
            return
        if reply.word0 & ~M.IXGBE_VT_MSGTYPE_CTS != M.IXGBE_VF_GET_QUEUES | M.IXGBE_VT_MSGTYPE_SUCCESS:
            return
        q = M.decode_queues(reply)
        tx = q.tx_queues if 0 < q.tx_queues <= R.VF_MAX_QUEUES else R.VF_MAX_QUEUES
        rx = q.rx_queues if 0 < q.rx_queues <= R.VF_MAX_QUEUES else R.VF_MAX_QUEUES
        tcs = 1 if q.trans_vlan > rx else q.trans_vlan
        def_q = 0 if q.default_queue >= tx else q.default_queue
        self.queues = QueueInfo(tx, rx, tcs, def_q)

    def _reset(self) -> None:
        """``ixgbevf_reset``: reset_hw, then init_hw and API negotiation if the PF answered."""
        if self._reset_hw():
            self._init_hw()
            self._negotiate_api()
        else:
            self._log("PF still resetting")
        self.last_reset = self.clock.now

    # ==========================================================================================
    # open / close
    def up(self) -> None:
        """``ixgbevf_open``: bring the interface up over the mailbox (spec §4.3).

        Raises DriverStateError if the PF is not up (its reset never completes).
        """
        if self.is_up:
            return
        with self._busy_section():
            if self.adapter_stopped:
                self._reset()
                if self.adapter_stopped:
                    raise DriverStateError(
                        f"{self.name} ({self.function.name}): PF still in reset state. "
                        "Is the PF interface up? (ixgbevf: 'Unable to start - perhaps the PF "
                        "Driver isn't up yet'); load the PF driver and bring it up first"
                    )
            self._configure()
            self._up_complete()
            if 0 not in self.vlans:  # NETDEV_UP: the 8021q core adds VID 0 to the hardware filter
                try:
                    self._send_vlan(0, True)
                    self.vlans.append(0)
                except MailboxError:
                    self._log("VF could not set VLAN 0")

    def _configure(self) -> None:
        self._get_queues()
        self._configure_msix()
        self._set_rx_mode_hw()
        self._restore_vlans()
        self._send_lpe(self.mtu, quiet=True)
        self._setup_rx_ring()
        self._setup_tx_ring()

    def _restore_vlans(self) -> None:
        """``ixgbevf_restore_vlan``: every VLAN of ``active_vlans`` again; one the PF refuses
        now (say a port VLAN was set since) stays in the list and is asked for at every reinit."""
        for vid in sorted(self.vlans):
            try:
                self._send_vlan(vid, True)
            except MailboxError:
                self._log(f"VF could not set VLAN {vid}")

    def _configure_msix(self) -> None:
        """``ixgbevf_configure_msix``: queue 0 on vector 0, the mailbox on the vector after it."""
        self._eims, self._mbx_vector = coalesce.configure_vf_msix(self.function, 1, self.rx_usecs)

    def _setup_rx_ring(self) -> None:
        """Queue 0's ring: allocated once from guest memory, re-programmed on every open."""
        self.napi.reset()
        if self.rx_ring is not None and self.rx_ring.count == self.rx_count:
            self.rx_ring.up()
            return
        rings = _ring_module()
        if rings is None or not hasattr(rings, "RxRing"):
            return
        # ixgbevf sets RXDCTL.VME on every ring: VLAN tags are stripped into the descriptor.
        self.rx_ring = rings.RxRing(self.function, self.memory, 0, count=self.rx_count, vlan_strip=True)

    def _setup_tx_ring(self) -> None:
        """Queue 0's transmit ring (sriov.drivers.txring): allocated once, re-programmed on every open."""
        if self.tx_ring is not None:
            self.tx_ring.up()
            return
        if importlib.util.find_spec("sriov.drivers.txring") is None:
            return
        from sriov.drivers.txring import TxRing

        # 256 x 2 KiB: a VM hosting many VFs keeps room (ixgbevf's 1024 descriptors carry no buffers)
        try:
            self.tx_ring = TxRing(self.function, self.memory, 0, count=256)
        except ConfigError as exc:  # guest memory exhausted: the interface runs receive-only
            self._log(f"no transmit ring: {exc}")

    def _up_complete(self) -> None:
        mac = self._mac if M.is_valid_ether_addr(self._mac) else self.perm_addr
        try:
            self._send_mac(mac)
        except MailboxError as exc:
            self._log(str(exc))
        self._get_link_state()
        self.is_up = True
        self.adapter_stopped = False
        coalesce.irq_enable(self.function, self._eims)  # auto-mask + auto-clear, then enable
        self.get_link_status = True
        self._start_timer()
        self._schedule_service(0)

    def down(self) -> None:
        """``ixgbevf_close``: stop queues and interrupts, then reset the function."""
        if not self.is_up:
            return
        with self._busy_section():
            self._down()
            if 0 in self.vlans:  # NETDEV_DOWN: the 8021q core takes VID 0 back out, whatever the reply
                self.vlans.remove(0)
                try:
                    self._send_vlan(0, False)
                except MailboxError:
                    self._log("Could not remove VLAN 0")

    def _down(self) -> None:
        self.is_up = False
        self._link_up = False
        self.function.write32(R.VTEIMC, IXGBE_VF_IRQ_CLEAR_MASK)
        self._cancel_timers()
        if self.rx_ring is not None:
            self.rx_ring.down()
        if self.tx_ring is not None:
            self.tx_ring.down()
        self.napi.reset()
        self._reset()

    def _reinit(self) -> None:
        """``ixgbevf_reinit_locked``: down (with reset) and up, replaying the configuration."""
        with self._busy_section():
            try:
                self.counters["link_changes"] += int(self._link_up)
                self.is_up = False
                self._link_up = False
                self.function.write32(R.VTEIMC, IXGBE_VF_IRQ_CLEAR_MASK)
                self._reset()
                self._configure()
                self._up_complete()
            except MailboxError as exc:
                self._log(f"reinit: {exc}")
                self.is_up = True
                self._start_timer()

    # ==========================================================================================
    # interrupts, the service task and link detection (spec §4.4)
    # _msix (the hypervisor's injection: count, then the mailbox vector here or NAPI for a queue
    # vector) is NicState's, compiled with the per-poll state NAPI reads
    def _msix_other(self, vector: int) -> None:
        """ixgbevf_msix_other: the mailbox ("other") vector; link and mailbox work go to the
        service task."""
        self.function.write32(R.VTEICR, 1 << vector)
        self.get_link_status = True
        self._schedule_service(0)
        if self.is_up:
            self.function.write32(R.VTEIMS, 1 << vector)  # re-enable after the auto-mask

    def _schedule_service(self, delay_ns: int) -> None:
        if self._service_handle is not None:
            return
        self._service_handle = self.clock.schedule(delay_ns, self._service_task)

    def _start_timer(self) -> None:
        if self._timer_handle is None:
            self._timer_handle = self.clock.schedule(WATCHDOG_NS, self._timer)

    def _timer(self) -> None:
        self._timer_handle = None
        if self.is_up:
            self._start_timer()
            self._schedule_service(0)

    def _cancel_timers(self) -> None:
        for handle in (self._service_handle, self._timer_handle):
            if handle is not None:
                handle.cancel()
        self._service_handle = self._timer_handle = None

    def _service_task(self) -> None:
        self._service_handle = None
        if not self.is_up:
            return
        if self._busy:  # the driver is inside a mailbox exchange (ixgbevf holds mbx_lock)
            self._schedule_service(BUSY_RETRY_NS)
            return
        now = self.clock.now
        if self._cts_lost and now > self.last_reset + RESET_HOLDOFF_NS:
            self.reset_requested = True
        if self.reset_requested:
            self.reset_requested = False
            self._cts_lost = False
            self._reinit()
            return
        if self._cts_lost:
            # ixgbevf keeps re-reading the mailbox during the 10 s hold-off, and each read
            # makes the PF answer with another FAILURE: an interrupt ping-pong with the
            # same outcome. The model waits the hold-off out quietly instead.
            return
        with self._busy_section():
            self._update_link()

    def _update_link(self) -> None:
        err, link = self._check_link()
        if err:
            link = False
            if self.clock.now > self.last_reset + RESET_HOLDOFF_NS:
                self.reset_requested = True
            else:
                self._cts_lost = True
                self.clock.schedule_at(
                    self.last_reset + RESET_HOLDOFF_NS + 1, lambda: self._schedule_service(0)
                )
        if link != self._link_up:
            self.counters["link_changes"] += 1
            self._log(f"NIC Link is {'Up 10 Gbps' if link else 'Down'}")
        self._link_up = link

    def _check_link(self) -> tuple[bool, bool]:
        """``ixgbevf_check_mac_link_vf`` (legacy): (error = lost CTS or timed out, link up)."""
        if self.mbx.check_for_rst() or not self.mbx.timeout:
            self.get_link_status = True
        if not self.get_link_status:
            return False, True
        fn = self.function
        if not fn.read32(R.VFLINKS) & R.LINKS_UP:
            return False, False
        for _ in range(5):  # SFP+ on 82599: the status takes up to 500 us to settle
            self.clock.advance(LINK_SETTLE_NS)
            if not fn.read32(R.VFLINKS) & R.LINKS_UP:
                return False, False
        try:
            word = self.mbx.read(1)[0]
        except MailboxError:  # a mailbox collision: wait for the next call
            return False, False
        if not word & M.IXGBE_VT_MSGTYPE_CTS:
            return bool(word & M.IXGBE_VT_MSGTYPE_FAILURE), False
        if not self.mbx.timeout:
            return True, False  # the PF talks again after a timeout: reinit
        self.get_link_status = False
        return False, True

    def _get_link_state(self) -> None:
        """``ixgbevf_get_link_state_vf``: asked on every API version; a NACK (a PF below 1.2
        NACKs it) or a lost reply leaves the state as it was."""
        try:
            reply = self.mbx.transact(M.get_link_state())
        except MailboxError:
            return
        if reply.nacked:
            return
        was = self.link_state
        self.link_state = M.decode_link_state(reply)
        if was and not self.link_state:
            self._log("VF is administratively disabled")

    # ==========================================================================================
    # configuration messages
    @contextlib.contextmanager
    def _busy_section(self) -> Iterator[None]:
        """The driver is inside a mailbox exchange (ixgbevf holds mbx_lock): the watchdog waits."""
        self._busy += 1
        try:
            yield
        finally:
            self._busy -= 1

    def _require_pf(self) -> None:
        if self.adapter_stopped:
            raise DriverStateError(
                f"{self.name}: PF still in reset state. Is the PF interface up? "
                "(bring the PF up, then nic.up())"
            )

    def _transact(self, msg: Message) -> Message:
        try:
            return self.mbx.transact(msg)
        except MailboxError:
            self.counters["mbx_errors"] += 1
            raise

    def _send_mac(self, mac: bytes) -> None:
        reply = self._transact(M.set_mac_addr(mac))
        if reply.word0 & ~M.IXGBE_VT_MSGTYPE_CTS == M.IXGBE_VF_SET_MAC_ADDR | M.IXGBE_VT_MSGTYPE_FAILURE:
            self._mac = self.perm_addr
            raise MailboxError(
                f"{self.name}: the PF refused MAC {M.format_mac(mac)} (NACK): the administrator set this "
                f"VF's MAC and the VF is not trusted, or the address is invalid or no RAR is free"
            )
        self._mac = bytes(mac)

    def _send_vlan(self, vid: int, add: bool) -> None:
        reply = self._transact(M.set_vlan(vid, add))
        w0 = reply.word0 & ~(M.IXGBE_VT_MSGINFO_MASK | M.IXGBE_VT_MSGTYPE_CTS)
        if w0 != M.IXGBE_VF_SET_VLAN | M.IXGBE_VT_MSGTYPE_SUCCESS:
            raise MailboxError(
                f"{self.name}: the PF refused to {'add' if add else 'remove'} VLAN {vid} (NACK): "
                "a port VLAN is set by the administrator, the VF is untrusted and holds the PF's cap of "
                "VLAN filters (PfDriver.UNTRUSTED_VF_MAX_VLANS), or all 63 VLAN filter entries are in use"
            )

    def _send_lpe(self, mtu: int, quiet: bool = False) -> bool:
        max_frame = mtu + R.ETH_HLEN + R.ETH_FCS_LEN
        try:
            reply = self._transact(M.set_lpe(max_frame))
        except MailboxError:
            if quiet:
                return False
            raise
        if reply.nacked:
            if quiet:
                self._log(f"Failed to set MTU at {mtu}", logging.WARNING)
                return False
            raise MailboxError(
                f"{self.name}: the PF refused max frame {max_frame} (MTU {mtu}) (NACK): on 82599 a VF "
                "may use jumbo frames only when the PF's MTU is jumbo too (and never above 9728 bytes)"
            )
        return True

    def _mc_hashes(self) -> list[int]:
        hashes = []
        for mac in self.mc_addrs:
            if _is_link_local(mac):
                continue
            if len(hashes) == M.IXGBE_MAX_VF_MC_ENTRIES:
                break
            hashes.append(M.mta_vector(mac, self.mc_filter_type))
        return hashes

    def _wanted_xcast(self) -> XcastMode:
        if self.promisc:
            return XcastMode.PROMISC
        if self.allmulti:
            return XcastMode.ALLMULTI
        return XcastMode.MULTI  # IFF_BROADCAST | IFF_MULTICAST

    def _set_rx_mode_hw(self) -> list[bytes]:
        """``ixgbevf_set_rx_mode``: xcast mode, multicast list, unicast (MACVLAN) list.

        Returns the unicast addresses the PF refused (ixgbevf ignores them; the model's
        `set_unicast` reports them, and they leave ``uc_addrs``)."""
        self._update_xcast(self._wanted_xcast())
        self._transact(M.set_multicast(self._mc_hashes()))
        if not self.uc_addrs:
            self._transact(M.set_macvlan(0, None))
            return []
        refused = [mac for i, mac in enumerate(self.uc_addrs, start=1)
                   if self._transact(M.set_macvlan(i, mac)).nacked]  # fmt: skip
        for mac in refused:
            self._log(f"the PF refused unicast address {M.format_mac(mac)}")
        self.uc_addrs = [mac for mac in self.uc_addrs if mac not in refused]
        return refused

    def _update_xcast(self, mode: XcastMode) -> None:
        if self.api < MboxApi.API_12:
            self.xcast_mode = None  # -EOPNOTSUPP: not asked at all
            return
        if mode == XcastMode.PROMISC and self.api < MboxApi.API_13:
            return
        reply = self._transact(M.update_xcast_mode(mode))
        if reply.word0 & ~M.IXGBE_VT_MSGTYPE_CTS == M.IXGBE_VF_UPDATE_XCAST_MODE | M.IXGBE_VT_MSGTYPE_FAILURE:
            self._log(f"xcast mode {mode.name} refused by the PF", logging.WARNING)
            return
        applied = M.decode_xcast_mode(reply)
        self.xcast_mode = XcastMode(applied) if applied in XcastMode._value2member_map_ else None

    # ==========================================================================================
    # netdev-like API
    def set_mac(self, mac: str | bytes) -> None:
        """``ip link set dev ethX address M`` inside the guest (SET_MAC_ADDR)."""
        new = M.parse_mac(mac)
        if not M.is_valid_ether_addr(new):
            raise ConfigError(f"{self.name}: {M.format_mac(new)} is not a valid unicast MAC")
        self._require_pf()
        with self._busy_section():
            self._send_mac(new)
        self.perm_addr = new  # kept across resets, as ixgbevf does

    def add_vlan(self, vid: int) -> None:
        """Add a VLAN filter (``ip link add link ethX ... type vlan id V``): SET_VLAN add."""
        if not isinstance(vid, int) or isinstance(vid, bool) or not 0 <= vid <= R.VLAN_VID_MASK:
            raise ConfigError(f"{self.name}: VLAN id must be an int in 0..4095, got {vid!r}")
        if vid in self.vlans:
            return
        if not self.adapter_stopped:
            with self._busy_section():
                self._send_vlan(vid, True)
        self.vlans.append(vid)

    def remove_vlan(self, vid: int) -> None:
        """Remove a VLAN filter: SET_VLAN remove."""
        if vid not in self.vlans:
            raise ConfigError(f"{self.name}: VLAN {vid!r} is not configured (configured: {self.vlans})")
        self.vlans.remove(vid)
        if not self.adapter_stopped:
            with self._busy_section():
                self._send_vlan(vid, False)

    def set_mtu(self, mtu: int) -> None:
        """``ip link set dev ethX mtu M``: SET_LPE with mtu + 18, then reinit if running."""
        top = MAX_MTU if self.api >= MboxApi.API_11 else LEGACY_82599_MAX_MTU
        if not isinstance(mtu, int) or isinstance(mtu, bool) or not ETH_MIN_MTU <= mtu <= top:
            raise ConfigError(
                f"{self.name}: MTU must be an int in {ETH_MIN_MTU}..{top} "
                f"(API {self.api.version}), got {mtu!r}"
            )
        if mtu == self.mtu:
            return
        if not self.adapter_stopped:
            with self._busy_section():
                self._send_lpe(mtu)
        self.mtu = mtu
        if self.is_up:
            self._reinit()

    def set_multicast(self, addresses: Sequence[str | bytes]) -> None:
        """The multicast list (joined groups): hashes by the PF's filter type, SET_MULTICAST."""
        macs = M.parse_mac_list(addresses, f"{self.name}: addresses")
        for mac in macs:
            if not mac[0] & 1:
                raise ConfigError(f"{self.name}: {M.format_mac(mac)} is not a multicast address")
        self.mc_addrs = macs
        if self.is_up:
            with self._busy_section():
                self._set_rx_mode_hw()

    def set_unicast(self, addresses: Sequence[str | bytes]) -> None:
        """Extra unicast addresses (macvlan on top of the VF): SET_MACVLAN 1, 2, ... or 0.

        Raises MailboxError naming the addresses the PF refused (they are dropped from
        ``uc_addrs``; the accepted ones are in place)."""
        macs = M.parse_mac_list(addresses, f"{self.name}: addresses")
        for mac in macs:
            if not M.is_valid_ether_addr(mac):
                raise ConfigError(f"{self.name}: {M.format_mac(mac)} is not a valid unicast MAC")
        self.uc_addrs = macs
        if self.is_up:
            with self._busy_section():
                refused = self._set_rx_mode_hw()
            if refused:
                raise MailboxError(
                    f"{self.name}: the PF refused unicast address(es) "
                    f"{', '.join(M.format_mac(m) for m in refused)} (NACK): the administrator set this "
                    "VF's MAC and it is not trusted, another function has the address, or the VF's "
                    "share of the shared MACVLAN list is used up; the others are in place"
                )

    def set_rx_mode(self, promisc: bool = False, allmulti: bool = False) -> XcastMode | None:
        """IFF_PROMISC / IFF_ALLMULTI -> UPDATE_XCAST_MODE; returns the mode the PF applied.

        An untrusted VF asking for more than MULTI gets MULTI; PROMISC is refused on 82599
        (the previous mode stays). Before API 1.2 nothing is asked and None is returned.
        """
        if not isinstance(promisc, bool) or not isinstance(allmulti, bool):
            raise ConfigError("promisc and allmulti must be True or False")
        self.promisc, self.allmulti = promisc, allmulti
        if self.is_up:
            with self._busy_section():
                self._set_rx_mode_hw()
        return self.xcast_mode

    def set_coalesce(self, rx_usecs: int) -> None:
        """``ethtool -C ethX rx-usecs N``: 0 off, 1 adaptive, 2..1022 a fixed interval (VTEITR)."""
        coalesce.itr_for_rx_usecs(rx_usecs)  # validates: ConfigError names the allowed range
        self.rx_usecs = rx_usecs
        self.napi.coalesce_changed(rx_usecs)
        if self.is_up:
            coalesce.set_coalesce(self.function, rx_usecs, [QUEUE_VECTOR])

    def set_ringparam(self, rx: int) -> int:
        """``ethtool -G ethX rx N``: the receive ring's descriptor count; returns the count applied.

        As ``ixgbevf_set_ringparam``: a count below IXGBEVF_MIN_RXD (64) is raised to it and any
        count is rounded up to a multiple of 8 (IXGBE_REQ_RX_DESCRIPTOR_MULTIPLE); above
        IXGBEVF_MAX_RXD (4096) ethtool refuses it. A running interface goes down and up again
        with a new ring (the old ring's guest memory is not reused).
        """
        if not isinstance(rx, int) or isinstance(rx, bool) or not 0 < rx <= R.MAX_RXD:
            raise ConfigError(f"{self.name}: rx ring size must be an int in 1..{R.MAX_RXD}, got {rx!r}")
        count = -(-max(rx, R.MIN_RXD) // R.REQ_RX_DESCRIPTOR_MULTIPLE) * R.REQ_RX_DESCRIPTOR_MULTIPLE
        if count == self.rx_count:
            return count
        rings = _ring_module()
        if rings is not None:
            need = count * (R.RX_DESC_SIZE + 2048) + rings.BOUNCE_SIZE + 4096 + 128
            free = self.memory.size - self.memory.allocated
            if need > free:
                raise ConfigError(
                    f"{self.name}: a ring of {count} descriptors needs {need} bytes of guest memory, "
                    f"{free} are free (give the VM more memory)"
                )
        self.rx_count = count
        if self.is_up:
            self.down()
            self.up()
        return count

    def rx_poll(self, budget: int = 64) -> Any:
        """Up to ``budget`` received frames: first those NAPI already handed to the stack (copies),
        else straight off the ring (zero-copy views, valid until the next poll)."""
        if self.rx_ring is None or not self.is_up:
            raise DriverStateError(
                f"{self.name}: no receive ring (interface down, or the datapath rings are not in this build)"
            )
        return self.napi.rx_poll(poll_budget(budget))

    def transmit(self, batch: Any) -> int:
        """Send the frames of a `Batch` (ixgbevf_xmit_frame per frame, one tail write): the port's
        transmit engine runs on the tail write. Returns the frames queued (fewer when the ring is full)."""
        if self.tx_ring is None or not self.is_up:
            raise DriverStateError(
                f"{self.name}: no transmit ring (interface down, or the datapath rings are not in this build)"
            )
        return self.tx_ring.transmit(batch)

    def _stat(self, lsb: int, msb: int | None, width: int) -> int:
        fn = self.function
        raw = fn.read32(lsb) | ((fn.read32(msb) & 0xF) << 32 if msb is not None else 0)
        last = self._stat_last.get(lsb, 0)
        self._stat_total[lsb] = self._stat_total.get(lsb, 0) + ((raw - last) % (1 << width))
        self._stat_last[lsb] = raw
        return self._stat_total[lsb]

    def stats(self) -> dict[str, int]:
        """ethtool -S style counters (VF statistics registers, accumulated across wraps)."""
        out = {
            "rx_packets": self._stat(R.VFGPRC, None, 32),
            "rx_bytes": self._stat(R.VFGORC_LSB, R.VFGORC_MSB, 36),
            "tx_packets": self._stat(R.VFGPTC, None, 32),
            "tx_bytes": self._stat(R.VFGOTC_LSB, R.VFGOTC_MSB, 36),
            "multicast": self._stat(R.VFMPRC, None, 32),
        }
        out.update(self.counters)
        s = self.mbx.stats
        out.update(
            mbx_msgs_tx=s.msgs_tx, mbx_msgs_rx=s.msgs_rx, mbx_acks=s.acks, mbx_reqs=s.reqs, mbx_rsts=s.rsts,
            mbx_timeouts=s.timeouts,
        )  # fmt: skip
        out.update(self.napi.stats())
        if self.rx_ring is not None:  # what the driver itself took off its ring
            for key, attr in (("rx_ring_packets", "frames"), ("rx_ring_bytes", "bytes")):
                if hasattr(self.rx_ring, attr):
                    out[key] = int(getattr(self.rx_ring, attr))
        if self.tx_ring is not None:  # what the driver queued, saw completed, and found the ring full
            out.update(
                tx_ring_packets=self.tx_ring.frames,
                tx_ring_completed=self.tx_ring.completed,
                tx_busy=self.tx_ring.tx_busy,
            )
        return out
