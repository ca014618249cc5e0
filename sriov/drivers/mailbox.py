"""The PF/VF mailbox: message codec, the legacy handshake on both sides, and a transcript.

Three parts, each usable on its own:

* **Codec** (spec §2): opcodes and word-0 flags named as the ixgbe headers name them,
  the API version enum (its *ordinal* is what API_NEGOTIATE carries: 1.1 is sent as 2),
  and typed encoders / decoders for every message of API 1.0-1.7 plus
  ``IXGBE_PF_CONTROL_MSG``. Byte orders follow the drivers' ``(u8 *)&msg[1]`` and
  ``(u16 *)&msg[1]`` casts on a little-endian host: MAC byte 0 is the low byte of word 1,
  multicast hash 0 is the low half of word 1.
* **Handshake** (spec §1.5): `VfMailbox` and `PfMailbox` speak the legacy protocol through
  BAR register reads and writes only (VFU/PFU lock, VFMBMEM/PFMBMEM, REQ/ACK/STS, the
  read-to-clear shadow on the VF side, write-1-to-clear MBVFICR on the PF side). Waits
  advance the simulation clock; nothing sleeps.
* **Transcript**: `LogEntry` / `MailboxLog`, what ``port.pf.mailbox_log(n)`` returns.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum

from sriov.errors import ConfigError, MailboxError
from sriov.hw import regs as R
from sriov.hw.clock import SimClock
from sriov.hw.device import PciFunction

# --------------------------------------------------------------------------------------------
# Word 0 (spec §2.1)
IXGBE_VT_MSGTYPE_SUCCESS = 0x80000000  # old name IXGBE_VT_MSGTYPE_ACK
IXGBE_VT_MSGTYPE_FAILURE = 0x40000000  # old name IXGBE_VT_MSGTYPE_NACK
IXGBE_VT_MSGTYPE_ACK = IXGBE_VT_MSGTYPE_SUCCESS
IXGBE_VT_MSGTYPE_NACK = IXGBE_VT_MSGTYPE_FAILURE
IXGBE_VT_MSGTYPE_CTS = 0x20000000
IXGBE_VT_MSGINFO_SHIFT = 16
IXGBE_VT_MSGINFO_MASK = 0x00FF0000
OPCODE_MASK = 0x0000FFFF
RESULT_MASK = IXGBE_VT_MSGTYPE_SUCCESS | IXGBE_VT_MSGTYPE_FAILURE
U32 = 0xFFFFFFFF

# Opcodes (spec §2.3)
IXGBE_VF_RESET = 0x01
IXGBE_VF_SET_MAC_ADDR = 0x02
IXGBE_VF_SET_MULTICAST = 0x03
IXGBE_VF_SET_VLAN = 0x04
IXGBE_VF_SET_LPE = 0x05
IXGBE_VF_SET_MACVLAN = 0x06
IXGBE_VF_API_NEGOTIATE = 0x08
IXGBE_VF_GET_QUEUES = 0x09
IXGBE_VF_GET_RETA = 0x0A
IXGBE_VF_GET_RSS_KEY = 0x0B
IXGBE_VF_UPDATE_XCAST_MODE = 0x0C
IXGBE_VF_IPSEC_ADD = 0x0D
IXGBE_VF_IPSEC_DEL = 0x0E
IXGBE_VF_GET_LINK_STATE = 0x10
IXGBE_VF_GET_PF_LINK_STATE = 0x11
IXGBE_VF_FEATURES_NEGOTIATE = 0x12
IXGBE_PF_CONTROL_MSG = 0x0100

# FEATURES_NEGOTIATE bits (API 1.7)
IXGBEVF_PF_SUP_IPSEC = 0x1
IXGBEVF_PF_SUP_ESX_MBX = 0x2

# Message lengths and reply word indices
IXGBE_VF_PERMADDR_MSG_LEN = 4
IXGBE_VF_MC_TYPE_WORD = 3
IXGBE_VF_TX_QUEUES = 1
IXGBE_VF_RX_QUEUES = 2
IXGBE_VF_TRANS_VLAN = 3
IXGBE_VF_DEF_QUEUE = 4
IXGBE_VF_GET_QUEUES_RESP_LEN = 5
IXGBE_VF_GET_RETA_RESP_LEN = 9  # 1 + 128 entries x 2 bits / 32
IXGBE_RSS_KEY_SIZE = 40
IXGBE_VF_GET_RSS_KEY_RESP_LEN = 1 + IXGBE_RSS_KEY_SIZE // 4
IXGBE_MAX_VF_MC_ENTRIES = R.MAX_VF_MC_ENTRIES
RETA_ENTRIES = 128

# Timing constants of the VF side (spec §1.1)
IXGBE_VF_MBX_INIT_TIMEOUT = 2000  # retries
IXGBE_VF_MBX_INIT_DELAY_NS = 500_000  # 500 us between retries
IXGBE_VF_INIT_TIMEOUT = 200  # retries waiting for RSTI/RSTD to drop
IXGBE_VF_INIT_DELAY_NS = 5_000  # 5 us apart


class MboxApi(IntEnum):
    """``enum ixgbe_pfvf_api_rev``: the value on the wire is the ordinal, not the version."""

    API_10 = 0
    API_20 = 1
    API_11 = 2
    API_12 = 3
    API_13 = 4
    API_14 = 5
    API_15 = 6
    API_16 = 7
    API_17 = 8
    UNKNOWN = 9

    @property
    def version(self) -> str:
        """The human version ("1.1" for API_11)."""
        return "unknown" if self is MboxApi.UNKNOWN else f"{self.name[4]}.{self.name[5]}"


class XcastMode(IntEnum):
    """``IXGBEVF_XCAST_MODE_*`` (spec §2.5)."""

    NONE = 0
    MULTI = 1
    ALLMULTI = 2
    PROMISC = 3


@dataclass(frozen=True)
class OpcodeInfo:
    """What the codec knows about one opcode: header name, first API, lengths in words."""

    name: str
    min_api: MboxApi
    request_len: int
    reply_len: int


OPCODES: dict[int, OpcodeInfo] = {
    IXGBE_VF_RESET: OpcodeInfo("IXGBE_VF_RESET", MboxApi.API_10, 1, IXGBE_VF_PERMADDR_MSG_LEN),
    IXGBE_VF_SET_MAC_ADDR: OpcodeInfo("IXGBE_VF_SET_MAC_ADDR", MboxApi.API_10, 3, 3),
    IXGBE_VF_SET_MULTICAST: OpcodeInfo("IXGBE_VF_SET_MULTICAST", MboxApi.API_10, 16, 16),
    IXGBE_VF_SET_VLAN: OpcodeInfo("IXGBE_VF_SET_VLAN", MboxApi.API_10, 2, 2),
    IXGBE_VF_SET_LPE: OpcodeInfo("IXGBE_VF_SET_LPE", MboxApi.API_10, 2, 2),
    IXGBE_VF_SET_MACVLAN: OpcodeInfo("IXGBE_VF_SET_MACVLAN", MboxApi.API_10, 3, 3),
    IXGBE_VF_API_NEGOTIATE: OpcodeInfo("IXGBE_VF_API_NEGOTIATE", MboxApi.API_10, 3, 3),
    IXGBE_VF_GET_QUEUES: OpcodeInfo(
        "IXGBE_VF_GET_QUEUES", MboxApi.API_11, IXGBE_VF_GET_QUEUES_RESP_LEN, IXGBE_VF_GET_QUEUES_RESP_LEN
    ),
    IXGBE_VF_GET_RETA: OpcodeInfo("IXGBE_VF_GET_RETA", MboxApi.API_12, 1, IXGBE_VF_GET_RETA_RESP_LEN),
    IXGBE_VF_GET_RSS_KEY: OpcodeInfo(
        "IXGBE_VF_GET_RSS_KEY", MboxApi.API_12, 1, IXGBE_VF_GET_RSS_KEY_RESP_LEN
    ),
    IXGBE_VF_UPDATE_XCAST_MODE: OpcodeInfo("IXGBE_VF_UPDATE_XCAST_MODE", MboxApi.API_12, 2, 2),
    IXGBE_VF_IPSEC_ADD: OpcodeInfo("IXGBE_VF_IPSEC_ADD", MboxApi.API_14, 16, 16),
    IXGBE_VF_IPSEC_DEL: OpcodeInfo("IXGBE_VF_IPSEC_DEL", MboxApi.API_14, 16, 16),
    IXGBE_VF_GET_LINK_STATE: OpcodeInfo("IXGBE_VF_GET_LINK_STATE", MboxApi.API_12, 2, 2),
    IXGBE_VF_GET_PF_LINK_STATE: OpcodeInfo("IXGBE_VF_GET_PF_LINK_STATE", MboxApi.API_16, 3, 3),
    IXGBE_VF_FEATURES_NEGOTIATE: OpcodeInfo("IXGBE_VF_FEATURES_NEGOTIATE", MboxApi.API_17, 2, 2),
    IXGBE_PF_CONTROL_MSG: OpcodeInfo("IXGBE_PF_CONTROL_MSG", MboxApi.API_10, 1, 0),
}


def opcode_name(opcode: int) -> str:
    """The ixgbe header name of an opcode, or ``UNKNOWN(0x..)``."""
    info = OPCODES.get(opcode)
    if info is not None:
        return info.name
    return "NONE" if opcode == 0 else f"UNKNOWN({opcode:#06x})"


# --------------------------------------------------------------------------------------------
# Messages


@dataclass(frozen=True)
class Message:
    """One mailbox message: word 0 split into its fields, then the payload words."""

    opcode: int
    info: int = 0  # MSGINFO, bits 23:16
    cts: bool = False
    result: int = 0  # 0, IXGBE_VT_MSGTYPE_SUCCESS, _FAILURE (garbage may carry both)
    payload: tuple[int, ...] = ()
    reserved: int = 0  # bits 28:24 of word 0; zero in every real message, kept for round trips

    def __post_init__(self) -> None:
        if not 0 <= self.opcode <= OPCODE_MASK:
            raise ConfigError(f"opcode {self.opcode!r} must fit 16 bits")
        if not 0 <= self.info <= 0xFF:
            raise ConfigError(f"MSGINFO {self.info!r} must fit 8 bits")
        if self.result & ~RESULT_MASK:
            raise ConfigError(f"result {self.result:#x} may only hold SUCCESS and FAILURE bits")
        if len(self.payload) > R.VFMAILBOX_SIZE - 1:
            raise ConfigError(f"{len(self.payload)} payload words; the mailbox holds 15 after word 0")
        if any(not 0 <= w <= U32 for w in self.payload):
            raise ConfigError("payload words must be 32-bit unsigned integers")

    @property
    def word0(self) -> int:
        """Word 0 as written to the mailbox."""
        return (
            self.opcode
            | (self.info << IXGBE_VT_MSGINFO_SHIFT)
            | (self.reserved << 24)
            | (IXGBE_VT_MSGTYPE_CTS if self.cts else 0)
            | self.result
        )

    @property
    def name(self) -> str:
        """The opcode's ixgbe header name."""
        return opcode_name(self.opcode)

    @property
    def acked(self) -> bool:
        """SUCCESS set and FAILURE clear."""
        return self.result == IXGBE_VT_MSGTYPE_SUCCESS

    @property
    def nacked(self) -> bool:
        """FAILURE set."""
        return bool(self.result & IXGBE_VT_MSGTYPE_FAILURE)

    @property
    def verdict(self) -> str:
        """'ACK', 'NACK', 'ACK+NACK' (garbage) or '' for a request."""
        return {
            0: "",
            IXGBE_VT_MSGTYPE_SUCCESS: "ACK",
            IXGBE_VT_MSGTYPE_FAILURE: "NACK",
        }.get(self.result, "ACK+NACK")

    def words(self, length: int | None = None) -> list[int]:
        """Word 0 and the payload, zero-padded to ``length`` words (default: just what is set)."""
        out = [self.word0, *self.payload]
        if length is not None:
            if length < len(out) and any(out[length:]):
                raise ConfigError(f"{self.name}: {len(out)} words do not fit in {length}")
            out = (out + [0] * length)[:length]
        return out

    def padded(self, length: int) -> list[int]:
        """Word 0 and the payload cut or zero-padded to exactly ``length`` words (for decoding:
        the PF reads all 16 words, and whatever a previous message left behind is ignored)."""
        out = [self.word0, *self.payload]
        return (out + [0] * length)[:length]

    def with_result(self, result: int, cts: bool | None = None) -> Message:
        """The same message with its verdict (and optionally CTS) set, as a reply."""
        return Message(
            self.opcode, self.info, self.cts if cts is None else cts, result, self.payload, self.reserved
        )

    @classmethod
    def from_words(cls, words: Sequence[int]) -> Message:
        """Split raw mailbox words (any 32-bit values) into a Message; trailing zeros dropped."""
        if not words:
            raise ConfigError("a message has at least word 0")
        if len(words) > R.VFMAILBOX_SIZE:
            raise ConfigError(f"{len(words)} words; the mailbox holds {R.VFMAILBOX_SIZE}")
        w0 = int(words[0]) & U32
        payload = [int(w) & U32 for w in words[1:]]
        while payload and payload[-1] == 0:
            payload.pop()
        return cls(
            opcode=w0 & OPCODE_MASK,
            info=(w0 & IXGBE_VT_MSGINFO_MASK) >> IXGBE_VT_MSGINFO_SHIFT,
            cts=bool(w0 & IXGBE_VT_MSGTYPE_CTS),
            result=w0 & RESULT_MASK,
            payload=tuple(payload),
            reserved=(w0 >> 24) & 0x1F,
        )

    def __str__(self) -> str:
        flags = "".join(
            f"|{f}"
            for f, on in (("CTS", self.cts), ("ACK", self.result & IXGBE_VT_MSGTYPE_SUCCESS),
                          ("NACK", self.result & IXGBE_VT_MSGTYPE_FAILURE))
            if on
        )  # fmt: skip
        info = f" info={self.info}" if self.info else ""
        return f"{self.name}{flags}{info} {' '.join(f'{w:08x}' for w in self.payload)}".rstrip()


# -- byte orders ------------------------------------------------------------------------------


_MAC_STR = re.compile(r"[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(\1[0-9A-Fa-f]{2}){4}\Z")


def parse_mac(mac: str | bytes | bytearray | Sequence[int]) -> bytes:
    """A MAC as 6 bytes from ``"02:00:00:00:00:01"``, ``"02-00-..."`` or 6 bytes/ints."""
    if isinstance(mac, str):
        # exactly two hex digits per byte: int(part, 16) alone would take " 02", "1", "+1", "0x1", "1_0"
        if not _MAC_STR.match(mac):
            raise ConfigError(
                f"MAC {mac!r} must be 6 colon-separated bytes of two hexadecimal digits each "
                "(like 02:00:00:00:00:01; '-' may separate them instead)"
            )
        values = [int(p, 16) for p in mac.replace("-", ":").split(":")]
    else:
        try:
            values = list(mac)
        except TypeError:  # None, an int...: not a MAC in any spelling
            raise ConfigError(f"MAC {mac!r} must be a string like 02:00:00:00:00:01 or 6 bytes") from None
    if len(values) != 6 or any(not isinstance(v, int) or not 0 <= v <= 0xFF for v in values):
        raise ConfigError(f"MAC {mac!r} must be 6 bytes")
    return bytes(values)


def parse_mac_list(addresses: Sequence[str | bytes], what: str = "addresses") -> list[bytes]:
    """Each MAC of a list (a single string or a non-iterable is refused, not split into characters)."""
    if isinstance(addresses, (str, bytes, bytearray)) or not isinstance(addresses, Iterable):
        raise ConfigError(
            f"{what} must be a list of MAC addresses like ['01:00:5e:00:00:01'], got {addresses!r}"
        )
    return [parse_mac(a) for a in addresses]


def format_mac(mac: bytes) -> str:
    """``02:00:00:00:00:01``."""
    return ":".join(f"{b:02x}" for b in mac)


def is_valid_ether_addr(mac: bytes) -> bool:
    """Linux ``is_valid_ether_addr``: not multicast and not all zeros."""
    return not mac[0] & 1 and any(mac)


def mac_to_words(mac: bytes) -> tuple[int, int]:
    """MAC bytes as the u32 words w1, w2 of ``(u8 *)&msg[1]`` (byte 0 lowest)."""
    if len(mac) != 6:
        raise ConfigError(f"MAC must be 6 bytes, got {len(mac)}")
    return int.from_bytes(mac[:4], "little"), int.from_bytes(mac[4:], "little")


def words_to_mac(w1: int, w2: int) -> bytes:
    """Inverse of `mac_to_words` (the high half of w2 is ignored, as the drivers do)."""
    return (w1 & U32).to_bytes(4, "little") + (w2 & 0xFFFF).to_bytes(2, "little")


def pack_u16(values: Sequence[int]) -> tuple[int, ...]:
    """u16 values into u32 words, low half first (``(u16 *)&msg[1]`` on little-endian)."""
    if any(not 0 <= v <= 0xFFFF for v in values):
        raise ConfigError("hash values must fit 16 bits")
    padded = list(values) + [0] * (len(values) % 2)
    return tuple(padded[i] | padded[i + 1] << 16 for i in range(0, len(padded), 2))


def unpack_u16(words: Sequence[int], count: int) -> list[int]:
    """The first ``count`` u16 values packed by `pack_u16`."""
    out: list[int] = []
    for w in words:
        out += [w & 0xFFFF, (w >> 16) & 0xFFFF]
    out += [0] * max(0, count - len(out))
    return out[:count]


def mta_vector(mac: bytes, mc_filter_type: int) -> int:
    """ixgbevf ``ixgbevf_mta_vector``: the 12-bit MTA hash for MCSTCTRL.MO = ``mc_filter_type``."""
    shift = {0: 4, 1: 3, 2: 2, 3: 0}.get(mc_filter_type)
    if shift is None:
        raise ConfigError(f"multicast filter type must be 0..3, got {mc_filter_type}")
    return ((mac[4] | mac[5] << 8) >> shift) & 0xFFF


# -- typed encoders / decoders, one pair per message ------------------------------------------


def reset_request() -> Message:
    """IXGBE_VF_RESET (1 word)."""
    return Message(IXGBE_VF_RESET)


def reset_reply(ack: bool, mac: bytes | None, mc_filter_type: int) -> Message:
    """The 4-word reset reply: ACK with the admin MAC, or NACK without; w3 = MC filter type."""
    w1, w2 = mac_to_words(mac) if ack and mac is not None else (0, 0)
    return Message(
        IXGBE_VF_RESET,
        result=IXGBE_VT_MSGTYPE_SUCCESS if ack else IXGBE_VT_MSGTYPE_FAILURE,
        payload=(w1, w2, mc_filter_type & U32),
    )


@dataclass(frozen=True)
class ResetReply:
    """Decoded reset reply."""

    ack: bool
    mac: bytes
    mc_filter_type: int


def decode_reset_reply(msg: Message) -> ResetReply:
    """Fields of a reset reply (MAC meaningful only when ack)."""
    p = msg.padded(IXGBE_VF_PERMADDR_MSG_LEN)
    return ResetReply(msg.acked, words_to_mac(p[1], p[2]), p[3])


def set_mac_addr(mac: bytes) -> Message:
    """IXGBE_VF_SET_MAC_ADDR: MAC in w1..w2."""
    return Message(IXGBE_VF_SET_MAC_ADDR, payload=mac_to_words(mac))


def decode_mac(msg: Message) -> bytes:
    """The MAC of SET_MAC_ADDR / SET_MACVLAN (and their replies)."""
    p = msg.padded(3)
    return words_to_mac(p[1], p[2])


def set_multicast(hashes: Sequence[int]) -> Message:
    """IXGBE_VF_SET_MULTICAST: count in MSGINFO (at most 30), u16 hashes from w1."""
    if len(hashes) > IXGBE_MAX_VF_MC_ENTRIES:
        raise ConfigError(f"{len(hashes)} multicast hashes; at most {IXGBE_MAX_VF_MC_ENTRIES} fit")
    return Message(IXGBE_VF_SET_MULTICAST, info=len(hashes), payload=pack_u16(hashes))


def decode_multicast(msg: Message) -> list[int]:
    """The hashes of SET_MULTICAST; the count is clamped to 30, as the PF clamps it."""
    count = min(msg.info, IXGBE_MAX_VF_MC_ENTRIES)
    return unpack_u16(msg.payload, count)


def set_vlan(vid: int, add: bool) -> Message:
    """IXGBE_VF_SET_VLAN: MSGINFO = add flag, w1 = VID."""
    if not 0 <= vid <= R.VLAN_VID_MASK:
        raise ConfigError(f"VLAN id {vid} must be 0..4095")
    return Message(IXGBE_VF_SET_VLAN, info=1 if add else 0, payload=(vid,))


def decode_vlan(msg: Message) -> tuple[int, bool]:
    """(VID, add) of SET_VLAN: VID = w1 & 0xFFF (IXGBE_VLVF_VLANID_MASK), add = MSGINFO != 0."""
    return msg.padded(2)[1] & R.VLVF_VLANID_MASK, bool(msg.info)


def set_lpe(max_frame: int) -> Message:
    """IXGBE_VF_SET_LPE: w1 = max frame in bytes, FCS included (VF sends mtu + 18)."""
    return Message(IXGBE_VF_SET_LPE, payload=(max_frame & U32,))


def decode_lpe(msg: Message) -> int:
    """The max frame of SET_LPE."""
    return msg.padded(2)[1]


def set_macvlan(index: int, mac: bytes | None) -> Message:
    """IXGBE_VF_SET_MACVLAN: MSGINFO = index (0 = clear all), MAC in w1..w2."""
    if not 0 <= index <= 0xFF:
        raise ConfigError(f"MACVLAN index {index} must be 0..255")
    return Message(IXGBE_VF_SET_MACVLAN, info=index, payload=mac_to_words(mac) if mac else ())


def api_negotiate(api: MboxApi) -> Message:
    """IXGBE_VF_API_NEGOTIATE: w1 = enum ordinal, w2 = 0 (3 words)."""
    return Message(IXGBE_VF_API_NEGOTIATE, payload=(int(api),))


def decode_api(msg: Message) -> int:
    """The api ordinal of API_NEGOTIATE (an int: garbage may be out of the enum)."""
    return msg.padded(2)[1]


def get_queues() -> Message:
    """IXGBE_VF_GET_QUEUES (5 words, all but w0 zero)."""
    return Message(IXGBE_VF_GET_QUEUES)


@dataclass(frozen=True)
class QueueInfo:
    """GET_QUEUES reply fields."""

    tx_queues: int
    rx_queues: int
    trans_vlan: int
    default_queue: int


def queues_reply(info: QueueInfo) -> Message:
    """A successful GET_QUEUES reply."""
    return Message(
        IXGBE_VF_GET_QUEUES,
        result=IXGBE_VT_MSGTYPE_SUCCESS,
        cts=True,
        payload=(info.tx_queues, info.rx_queues, info.trans_vlan, info.default_queue),
    )


def decode_queues(msg: Message) -> QueueInfo:
    """Fields of a GET_QUEUES reply."""
    p = msg.padded(IXGBE_VF_GET_QUEUES_RESP_LEN)
    return QueueInfo(p[IXGBE_VF_TX_QUEUES], p[IXGBE_VF_RX_QUEUES], p[IXGBE_VF_TRANS_VLAN],
                     p[IXGBE_VF_DEF_QUEUE])  # fmt: skip


def get_reta() -> Message:
    """IXGBE_VF_GET_RETA (1 word)."""
    return Message(IXGBE_VF_GET_RETA)


def pack_reta(reta: Sequence[int]) -> tuple[int, ...]:
    """128 RETA entries, 2 bits each, 16 per word (entry 16i+j at bits 2j+1:2j of word i)."""
    if len(reta) != RETA_ENTRIES:
        raise ConfigError(f"RETA has {RETA_ENTRIES} entries, got {len(reta)}")
    return tuple(
        sum((reta[16 * i + j] & 0x3) << (2 * j) for j in range(16)) for i in range(RETA_ENTRIES // 16)
    )


def decode_reta(msg: Message) -> list[int]:
    """The 128 2-bit entries of a GET_RETA reply."""
    p = msg.padded(IXGBE_VF_GET_RETA_RESP_LEN)[1:]
    return [(p[i // 16] >> (2 * (i % 16))) & 0x3 for i in range(RETA_ENTRIES)]


def get_rss_key() -> Message:
    """IXGBE_VF_GET_RSS_KEY (1 word)."""
    return Message(IXGBE_VF_GET_RSS_KEY)


def pack_rss_key(key: bytes) -> tuple[int, ...]:
    """The 40-byte RSS key in w1..w10 (memory order)."""
    if len(key) != IXGBE_RSS_KEY_SIZE:
        raise ConfigError(f"RSS key is {IXGBE_RSS_KEY_SIZE} bytes, got {len(key)}")
    return tuple(int.from_bytes(key[i : i + 4], "little") for i in range(0, IXGBE_RSS_KEY_SIZE, 4))


def decode_rss_key(msg: Message) -> bytes:
    """The 40-byte key of a GET_RSS_KEY reply."""
    p = msg.padded(IXGBE_VF_GET_RSS_KEY_RESP_LEN)[1:]
    return b"".join(w.to_bytes(4, "little") for w in p)


def update_xcast_mode(mode: XcastMode | int) -> Message:
    """IXGBE_VF_UPDATE_XCAST_MODE: w1 = mode (the reply's w1 = the mode applied)."""
    return Message(IXGBE_VF_UPDATE_XCAST_MODE, payload=(int(mode) & U32,))


def decode_xcast_mode(msg: Message) -> int:
    """w1 of UPDATE_XCAST_MODE (request: asked; reply: applied)."""
    return msg.padded(2)[1]


def get_link_state() -> Message:
    """IXGBE_VF_GET_LINK_STATE (2 words)."""
    return Message(IXGBE_VF_GET_LINK_STATE)


def decode_link_state(msg: Message) -> bool:
    """w1 of the GET_LINK_STATE reply: the administrator's link_enable."""
    return bool(msg.padded(2)[1])


def features_negotiate(features: int) -> Message:
    """IXGBE_VF_FEATURES_NEGOTIATE: w1 = the VF's features (the reply's w1 = those the PF grants)."""
    return Message(IXGBE_VF_FEATURES_NEGOTIATE, payload=(features & U32,))


def decode_features(msg: Message) -> int:
    """w1 of FEATURES_NEGOTIATE."""
    return msg.padded(2)[1]


def control_msg(cts: bool) -> Message:
    """IXGBE_PF_CONTROL_MSG, the PF's ping (``| CTS`` when the VF is clear to send)."""
    return Message(IXGBE_PF_CONTROL_MSG, cts=cts)


def describe(msg: Message, reply: bool = False) -> str:
    """A one-line decoding of ``msg`` for transcripts."""
    op = msg.opcode
    try:
        if op == IXGBE_VF_RESET and reply:
            r = decode_reset_reply(msg)
            mac = format_mac(r.mac) if r.ack else "none from the administrator"
            return f"mac={mac} mc_filter_type={r.mc_filter_type}"
        if op in (IXGBE_VF_SET_MAC_ADDR,):
            return f"mac={format_mac(decode_mac(msg))}"
        if op == IXGBE_VF_SET_MACVLAN:
            return f"index={msg.info} mac={format_mac(decode_mac(msg))}"
        if op == IXGBE_VF_SET_MULTICAST and not reply:
            return f"count={msg.info} hashes=[{', '.join(f'{h:#05x}' for h in decode_multicast(msg))}]"
        if op == IXGBE_VF_SET_VLAN:
            vid, add = decode_vlan(msg)
            return f"{'add' if add else 'remove'} vid={vid}"
        if op == IXGBE_VF_SET_LPE:
            return f"max_frame={decode_lpe(msg)}"
        if op == IXGBE_VF_API_NEGOTIATE:
            api = decode_api(msg)
            return f"api={MboxApi(api).version if api in MboxApi._value2member_map_ else api}"
        if op == IXGBE_VF_GET_QUEUES and reply and msg.acked:
            q = decode_queues(msg)
            return f"tx={q.tx_queues} rx={q.rx_queues} trans_vlan={q.trans_vlan} def_q={q.default_queue}"
        if op == IXGBE_VF_UPDATE_XCAST_MODE:
            mode = decode_xcast_mode(msg)
            return f"mode={XcastMode(mode).name if mode in XcastMode._value2member_map_ else mode}"
        if op == IXGBE_VF_FEATURES_NEGOTIATE:
            return f"features={decode_features(msg):#x}"
        if op == IXGBE_VF_GET_LINK_STATE and reply and msg.acked:
            return f"link_enable={int(decode_link_state(msg))}"
    except ConfigError:  # garbage that does not decode: show the words only
        return ""
    return ""


# --------------------------------------------------------------------------------------------
# The legacy handshake, VF side (ixgbevf mbx.c, spec §1.5)


@dataclass
class MailboxStats:
    """``struct ixgbe_mbx_stats``: what one side sent, received, acked, and resets seen."""

    msgs_tx: int = 0
    msgs_rx: int = 0
    acks: int = 0
    reqs: int = 0
    rsts: int = 0
    timeouts: int = 0
    lock_failures: int = 0


class VfMailbox:
    """The VF's side of the legacy mailbox, through VF BAR0 reads and writes only.

    ``shadow`` is ``hw->mbx.vf_mailbox``: PFSTS, PFACK and RSTD are read-to-clear in
    hardware, so every read ORs them into the shadow and each check consumes only the bit
    it tested. ``timeout`` (retries, ``udelay_ns`` apart) is 0 only between a reset's start
    and the PF's answer; as ixgbevf since 5.17, a timed-out poll fails that one operation
    and leaves ``timeout`` alone, and taking the lock (VFU) is retried as long.
    """

    def __init__(self, fn: PciFunction, clock: SimClock) -> None:
        self.fn = fn
        self.clock = clock
        self.shadow = 0
        self.timeout = 0  # becomes active once reset_hw saw the PF done (as ixgbevf)
        self.udelay_ns = IXGBE_VF_MBX_INIT_DELAY_NS
        self.stats = MailboxStats()

    def reset_params(self) -> None:
        """``init_params``: back to the legacy defaults with the timeout disabled."""
        self.timeout = 0
        self.udelay_ns = IXGBE_VF_MBX_INIT_DELAY_NS

    def read_v2p(self) -> int:
        """VFMAILBOX with the shadowed read-to-clear bits ORed in."""
        value = self.fn.read32(R.VFMAILBOX) | self.shadow
        self.shadow |= value & R.VFMAILBOX_R2C_BITS
        return value

    def _check_for_bit(self, mask: int) -> bool:
        hit = bool(self.read_v2p() & mask)
        self.shadow &= ~mask
        return hit

    def check_for_msg(self) -> bool:
        """PFSTS seen (and consumed)."""
        hit = self._check_for_bit(R.VFMAILBOX_PFSTS)
        self.stats.reqs += hit
        return hit

    def check_for_ack(self) -> bool:
        """PFACK seen (and consumed)."""
        hit = self._check_for_bit(R.VFMAILBOX_PFACK)
        self.stats.acks += hit
        return hit

    def check_for_rst(self) -> bool:
        """RSTD or RSTI seen (RSTD consumed; RSTI is a level, not read-to-clear)."""
        hit = self._check_for_bit(R.VFMAILBOX_RSTD | R.VFMAILBOX_RSTI)
        self.stats.rsts += hit
        return hit

    def _obtain_lock(self) -> None:
        """``ixgbevf_obtain_mbx_lock_vf``: set VFU and check it stuck, ``timeout`` tries apart."""
        if not self.timeout:
            raise MailboxError(f"{self.fn.name}: mailbox not initialised (the VF has not reset yet)")
        for attempt in range(self.timeout):
            if attempt:
                self.clock.advance(self.udelay_ns)
            self.fn.write32(R.VFMAILBOX, self.read_v2p() | R.VFMAILBOX_VFU)
            if self.read_v2p() & R.VFMAILBOX_VFU:
                return
        self.stats.lock_failures += 1
        raise MailboxError(
            f"{self.fn.name}: mailbox lock (VFU) not granted within "
            f"{self.timeout_ns() / 1e9:g} s of simulated time: the PF holds it"
        )

    def write(self, words: Sequence[int]) -> None:
        """Legacy write: lock, flush shadowed PFSTS/PFACK, copy to VFMBMEM, REQ (drops VFU)."""
        if not 1 <= len(words) <= R.VFMAILBOX_SIZE:
            raise ConfigError(f"a mailbox message is 1..{R.VFMAILBOX_SIZE} words, got {len(words)}")
        self._obtain_lock()
        self.check_for_msg()
        self.check_for_ack()
        for i, w in enumerate(words):
            self.fn.write32(R.VFMBMEM + 4 * i, int(w) & U32)
        self.stats.msgs_tx += 1
        self.fn.write32(R.VFMAILBOX, R.VFMAILBOX_REQ)

    def read(self, size: int) -> list[int]:
        """Legacy read: lock, copy ``size`` words, ACK (drops VFU). Does not test PFSTS."""
        self._obtain_lock()
        words = [self.fn.read32(R.VFMBMEM + 4 * i) for i in range(size)]
        self.fn.write32(R.VFMAILBOX, R.VFMAILBOX_ACK)
        self.stats.msgs_rx += 1
        return words

    def _poll(self, check: Callable[[], bool], what: str) -> None:
        if not self.timeout:
            raise MailboxError(f"{self.fn.name}: mailbox not initialised (the VF has not reset yet)")
        countdown = self.timeout
        while not check():
            countdown -= 1
            if not countdown:
                self.stats.timeouts += 1
                raise MailboxError(
                    f"{self.fn.name}: no {what} from the PF within "
                    f"{self.timeout_ns() / 1e9:g} s of simulated time"
                )
            self.clock.advance(self.udelay_ns)

    def timeout_ns(self) -> int:
        """The longest a posted operation waits."""
        return IXGBE_VF_MBX_INIT_TIMEOUT * self.udelay_ns

    def write_posted(self, words: Sequence[int]) -> None:
        """Write, then wait (simulated) for the PF's ACK."""
        self.write(words)
        self._poll(self.check_for_ack, "ACK")

    def read_posted(self, size: int) -> list[int]:
        """Wait (simulated) for PFSTS, then read."""
        self._poll(self.check_for_msg, "message")
        return self.read(size)

    def transact(self, msg: Message, reply_len: int | None = None) -> Message:
        """``ixgbevf_write_msg_read_ack``: post ``msg``, read the reply."""
        info = OPCODES.get(msg.opcode)
        length = reply_len if reply_len is not None else (info.reply_len if info else R.VFMAILBOX_SIZE)
        req_len = info.request_len if info else R.VFMAILBOX_SIZE
        self.write_posted(msg.padded(max(req_len, len(msg.payload) + 1)))
        return Message.from_words(self.read_posted(length))


# --------------------------------------------------------------------------------------------
# The legacy handshake, PF side (ixgbe_mbx.c, upstream)


class PfMailbox:
    """The PF's side: per-VF detection through MBVFICR/VFLRE and PFU-locked copies."""

    def __init__(self, fn: PciFunction) -> None:
        self.fn = fn
        self.stats = MailboxStats()

    def _test_and_clear(self, reg: int, bit: int) -> bool:
        if self.fn.read32(reg) & bit:
            self.fn.write32(reg, bit)  # write 1 to clear
            return True
        return False

    def check_for_msg(self, vf: int) -> bool:
        """VFREQ of ``vf`` set in MBVFICR (cleared by this check, as upstream)."""
        hit = self._test_and_clear(R.MBVFICR(vf >> 4), R.MBVFICR_VFREQ_VF1 << (vf % 16))
        self.stats.reqs += hit
        return hit

    def check_for_ack(self, vf: int) -> bool:
        """VFACK of ``vf`` set in MBVFICR (cleared by this check)."""
        hit = self._test_and_clear(R.MBVFICR(vf >> 4), R.MBVFICR_VFACK_VF1 << (vf % 16))
        self.stats.acks += hit
        return hit

    def check_for_rst(self, vf: int) -> bool:
        """A VF-level reset event (VFLRE on 82599), cleared through VFLREC."""
        i, bit = vf >> 5, 1 << (vf % 32)
        if self.fn.read32(R.VFLRE(i)) & bit:
            self.fn.write32(R.VFLREC(i), bit)
            self.stats.rsts += 1
            return True
        return False

    def _obtain_lock(self, vf: int) -> bool:
        self.fn.write32(R.PFMAILBOX(vf), R.PFMAILBOX_PFU)
        if self.fn.read32(R.PFMAILBOX(vf)) & R.PFMAILBOX_PFU:
            return True
        self.stats.lock_failures += 1
        return False

    def write(self, vf: int, words: Sequence[int]) -> bool:
        """Lock, flush VFREQ/VFACK, copy to PFMBMEM(vf), STS (drops PFU). False: lock not granted."""
        if not self._obtain_lock(vf):
            return False
        self.check_for_msg(vf)
        self.check_for_ack(vf)
        base = R.PFMBMEM(vf)
        for i, w in enumerate(words):
            self.fn.write32(base + 4 * i, int(w) & U32)
        self.fn.write32(R.PFMAILBOX(vf), R.PFMAILBOX_STS)
        self.stats.msgs_tx += 1
        return True

    def read(self, vf: int, size: int = R.VFMAILBOX_SIZE) -> list[int] | None:
        """Lock, copy ``size`` words, ACK (drops PFU). None: lock not granted (VF holds VFU)."""
        if not self._obtain_lock(vf):
            return None
        base = R.PFMBMEM(vf)
        words = [self.fn.read32(base + 4 * i) for i in range(size)]
        self.fn.write32(R.PFMAILBOX(vf), R.PFMAILBOX_ACK)
        self.stats.msgs_rx += 1
        return words


# --------------------------------------------------------------------------------------------
# Transcript

VF_TO_PF = "VF->PF"
PF_TO_VF = "PF->VF"


@dataclass(frozen=True)
class LogEntry:
    """One message in a VF's mailbox transcript."""

    time_ns: int
    direction: str  # VF_TO_PF or PF_TO_VF
    opcode: str  # ixgbe header name
    words: tuple[int, ...]
    verdict: str  # "ACK", "NACK", "" (a request or a ping), or why nothing was answered
    detail: str = ""

    @property
    def message(self) -> Message:
        """The words decoded again."""
        return Message.from_words(self.words)

    def __str__(self) -> str:
        cts = " CTS" if self.words and self.words[0] & IXGBE_VT_MSGTYPE_CTS else ""
        words = " ".join(f"{w:08x}" for w in self.words)
        detail = f"  ({self.detail})" if self.detail else ""
        return (
            f"{self.time_ns / 1000:12.3f} us  {self.direction}  {self.opcode:<27} "
            f"{(self.verdict + cts).strip():<9} [{words}]{detail}"
        )


class MailboxLog(list[LogEntry]):
    """A VF's transcript: a list of `LogEntry`, oldest first, that prints as a table."""

    def __init__(self, vf: int, entries: Iterable[LogEntry] = ()) -> None:
        super().__init__(entries)
        self.vf = vf

    @property
    def entries(self) -> list[LogEntry]:
        """The entries as a plain list."""
        return list(self)

    def opcodes(self, direction: str | None = None) -> list[str]:
        """The opcode names in order (optionally only one direction)."""
        return [e.opcode for e in self if direction is None or e.direction == direction]

    def __str__(self) -> str:
        head = f"mailbox transcript of VF {self.vf} ({len(self)} messages)\n"
        cols = f"{'time':>15}  dir     {'opcode':<27} {'verdict':<9} words"
        return head + "\n".join([cols, *(str(e) for e in self)])


def entries_matching(entries: Iterable[LogEntry], opcode: str) -> list[LogEntry]:
    """The entries with a given opcode name."""
    return [e for e in entries if e.opcode == opcode]
