"""The 82599 register map, as data.

Every register offset and bit the model uses, named as the Linux ixgbe / ixgbevf
headers name them (without the ``IXGBE_`` prefix: the module is the prefix).
Offsets are byte offsets into BAR0 of the function named in each section.
Array registers are functions of their index, as the header macros are.

Nothing else in the package spells a register number: import it from here.
"""

from __future__ import annotations

# --------------------------------------------------------------------------------------------
# PCI identity (spec §4.1)
PCI_VENDOR_ID_INTEL = 0x8086
DEV_ID_82599_SFP = 0x10FB
DEV_ID_82599_VF = 0x10ED

PF_BAR0_SIZE = 0x20000  # 128 KiB of PF registers modelled
VF_BAR0_SIZE = 0x4000  # 16 KiB VF BAR0

MAX_VFS = 63  # IXGBE_MAX_VFS_DRV_LIMIT
MAX_POOLS = 64
MAX_QUEUES = 128  # IXGBE_82599_MAX_RX_QUEUES
NUM_RAR = 128  # IXGBE_82599_RAR_ENTRIES
NUM_MTA = 128
NUM_UTA = 128
NUM_VFTA = 128
NUM_VLVF = 64  # IXGBE_VLVF_ENTRIES
MAX_VF_MC_ENTRIES = 30  # IXGBE_MAX_VF_MC_ENTRIES

# --------------------------------------------------------------------------------------------
# General PF registers
CTRL = 0x00000
CTRL_RST = 0x04000000
STATUS = 0x00008
CTRL_EXT = 0x00018
CTRL_EXT_PFRSTD = 0x00004000
LINKS = 0x042A4
LINKS_UP = 0x40000000
LINKS_SPEED_82599 = 0x30000000
LINKS_SPEED_10G_82599 = 0x30000000

EICR = 0x00800
EICS = 0x00808
EIMS = 0x00880
EIMC = 0x00888
EIAC = 0x00810
EIAM = 0x00890
EICR_RTX_QUEUE = 0x0000FFFF
EICR_MAILBOX = 0x00080000
EICR_LSC = 0x00100000
IVAR_MISC = 0x00A00  # bits 15:8 = MSI-X vector of the "other" causes (mailbox, LSC)
IVAR_ALLOC_VAL_PF = 0x80
GPIE = 0x00898
GPIE_MSIX_MODE = 0x00000010
GPIE_VTMODE_MASK = 0x0000C000
GPIE_VTMODE_16 = 0x00004000
GPIE_VTMODE_32 = 0x00008000
GPIE_VTMODE_64 = 0x0000C000
GCR_EXT = 0x11050
GCR_EXT_VT_MODE_MASK = 0x00000003
GCR_EXT_VT_MODE_16 = 0x00000001
GCR_EXT_VT_MODE_32 = 0x00000002
GCR_EXT_VT_MODE_64 = 0x00000003


def EITR(i: int) -> int:
    """Interrupt throttle register of PF vector ``i``."""
    return 0x00820 + 4 * i if i <= 23 else 0x012300 + 4 * (i - 24)


EITR_ITR_INT_MASK = 0x00000FF8
EITR_CNT_WDIS = 0x80000000
MAX_EITR = 0x00000FF8  # IXGBE_MAX_EITR: the interval bits a driver may write


def IVAR(i: int) -> int:
    """PF interrupt vector allocation for PF queues 2i and 2i+1 (RX entry bits 7:0, TX 15:8 per queue)."""
    return 0x00900 + 4 * i


def EICS_EX(i: int) -> int:
    """Extended interrupt cause set of PF MSI-X vectors 32i..32i+31."""
    return 0x00A90 + 4 * i


def EIMS_EX(i: int) -> int:
    """Extended interrupt mask set (enable) of PF MSI-X vectors 32i..32i+31."""
    return 0x00AA0 + 4 * i


def EIMC_EX(i: int) -> int:
    """Extended interrupt mask clear of PF MSI-X vectors 32i..32i+31."""
    return 0x00AB0 + 4 * i


def EIAM_EX(i: int) -> int:
    """Extended auto-mask enable of PF MSI-X vectors 32i..32i+31."""
    return 0x00AD0 + 4 * i


NUM_IVAR = 64  # IVAR(0..63) cover the 128 PF queues
IVAR_ENTRY_BITS = 8  # one 8-bit entry per (queue, direction); bit 7 = ALLOC_VAL
IVAR_VECTOR_MASK = 0x7F  # vector index inside an entry
EICR_OTHER_CAUSES = 0xFFFF0000  # EICR bits 31:16: the non-queue ("other") causes

# --------------------------------------------------------------------------------------------
# Mailbox, PF side (spec §1.1, §1.3)
VFMAILBOX_SIZE = 16  # 32-bit words per mailbox


def PFMAILBOX(vf: int) -> int:
    """PF's doorbell/lock register for VF ``vf``."""
    return 0x04B00 + 4 * vf


def PFMBMEM(vf: int) -> int:
    """First word of VF ``vf``'s 16-word mailbox buffer, as the PF sees it."""
    return 0x13000 + 64 * vf


def MBVFICR(i: int) -> int:
    """Mailbox VF interrupt cause register ``i`` (16 VFs each, write-1-to-clear)."""
    return 0x00710 + 4 * i


def MBVFIMR(i: int) -> int:
    """Mailbox VF interrupt mask register ``i``."""
    return 0x00720 + 4 * i


def VFLRE(i: int) -> int:
    """VF-level-reset event register ``i`` (32 VFs each), 82599 offsets."""
    return 0x00600 if i % 2 == 0 else 0x001C0


def VFLREC(i: int) -> int:
    """VF-level-reset event clear register ``i`` (write 1 to clear)."""
    return 0x00700 + 4 * i


PFMAILBOX_STS = 0x00000001
PFMAILBOX_ACK = 0x00000002
PFMAILBOX_VFU = 0x00000004
PFMAILBOX_PFU = 0x00000008
PFMAILBOX_RVFU = 0x00000010
MBVFICR_VFREQ_MASK = 0x0000FFFF
MBVFICR_VFREQ_VF1 = 0x00000001
MBVFICR_VFACK_MASK = 0xFFFF0000
MBVFICR_VFACK_VF1 = 0x00010000

# --------------------------------------------------------------------------------------------
# L2 filters, PF side (spec §5.1)
RAL_82598_ALIAS = 0x05400  # RAL/RAH(0..15) legacy alias of RAL/RAH at 0x0A200


def RAL(i: int) -> int:
    """Receive address low of RAR ``i`` (MAC bytes 0..3, little-endian)."""
    return 0x05400 + 8 * i if i <= 15 else 0x0A200 + 8 * i


def RAH(i: int) -> int:
    """Receive address high of RAR ``i`` (MAC bytes 4..5, AV bit)."""
    return 0x05404 + 8 * i if i <= 15 else 0x0A204 + 8 * i


RAR_BASE = 0x0A200  # canonical home of all 128 RAL/RAH pairs
RAH_AV = 0x80000000
RAH_VIND_MASK = 0x003C0000


def MPSAR_LO(i: int) -> int:
    """Pool select bitmap of RAR ``i``, pools 0-31."""
    return 0x0A600 + 8 * i


def MPSAR_HI(i: int) -> int:
    """Pool select bitmap of RAR ``i``, pools 32-63."""
    return 0x0A604 + 8 * i


def MTA(i: int) -> int:
    """Multicast table array register ``i`` (4096-bit hash table)."""
    return 0x05200 + 4 * i


MCSTCTRL = 0x05090
MCSTCTRL_MO_MASK = 0x00000003
MCSTCTRL_MFE = 0x00000004


def UTA(i: int) -> int:
    """Unicast table array register ``i``."""
    return 0x0F400 + 4 * i


def VFTA(i: int) -> int:
    """VLAN filter table array register ``i``."""
    return 0x0A000 + 4 * i


def VLVF(i: int) -> int:
    """VLAN pool filter entry ``i``."""
    return 0x0F100 + 4 * i


def VLVFB(i: int) -> int:
    """VLAN pool filter bitmap register ``i`` (2 per VLVF entry)."""
    return 0x0F200 + 4 * i


VLVF_VIEN = 0x80000000
VLVF_VLANID_MASK = 0x00000FFF
VLVF_ENTRIES = NUM_VLVF


def VMOLR(pool: int) -> int:
    """VM offload register of pool ``pool``."""
    return 0x0F000 + 4 * pool


VMOLR_UPE = 0x00400000
VMOLR_VPE = 0x00800000
VMOLR_AUPE = 0x01000000
VMOLR_ROMPE = 0x02000000
VMOLR_ROPE = 0x04000000
VMOLR_BAM = 0x08000000
VMOLR_MPE = 0x10000000

VT_CTL = 0x051B0
VT_CTL_VT_ENABLE = 0x00000001
VT_CTL_POOL_SHIFT = 7
VT_CTL_POOL_MASK = 0x3F << 7
VT_CTL_DIS_DEFPL = 0x20000000
VT_CTL_REPLEN = 0x40000000


def VFRE(i: int) -> int:
    """Pool receive enable bitmap ``i`` (pools 32i..32i+31)."""
    return 0x051E0 + 4 * i


def VFTE(i: int) -> int:
    """Pool transmit enable bitmap ``i``."""
    return 0x08110 + 4 * i


FCTRL = 0x05080
FCTRL_SBP = 0x00000002
FCTRL_MPE = 0x00000100
FCTRL_UPE = 0x00000200
FCTRL_BAM = 0x00000400
FCTRL_PMCF = 0x00001000
FCTRL_DPF = 0x00002000

VLNCTRL = 0x05088
VLNCTRL_VET = 0x0000FFFF
VLNCTRL_CFIEN = 0x20000000
VLNCTRL_VFE = 0x40000000
VLNCTRL_VME = 0x80000000


def VMVIR(pool: int) -> int:
    """VM VLAN insert register of pool ``pool``."""
    return 0x08000 + 4 * pool


VMVIR_VLANA_DEFAULT = 0x40000000
VMVIR_VLANA_NEVER = 0x80000000


def PFVFSPOOF(i: int) -> int:
    """Anti-spoof enables for VFs 8i..8i+7 (MAC bits 7:0, VLAN bits 15:8)."""
    return 0x08200 + 4 * i


SPOOF_VLANAS_SHIFT = 8
PFDTXGSWC = 0x08220
PFDTXGSWC_VT_LBEN = 0x00000001


def VMECM(i: int) -> int:
    """Enable counting of spoofed packets in SSVPC, per pool bitmap ``i``."""
    return 0x08790 + 4 * i


SSVPC = 0x08780

QDE = 0x02F04
QDE_ENABLE = 0x00000001
QDE_HIDE_VLAN = 0x00000002
QDE_IDX_MASK = 0x00007F00
QDE_IDX_SHIFT = 8
QDE_WRITE = 0x00010000
QDE_READ = 0x00020000

MAXFRS = 0x04268  # also named MHADD
MHADD_MFS_MASK = 0xFFFF0000
MHADD_MFS_SHIFT = 16
HLREG0 = 0x04240
HLREG0_RXCRCSTRP = 0x00000002
HLREG0_JUMBOEN = 0x00000004

# --------------------------------------------------------------------------------------------
# Queues, PF side (spec §5.9). One 0x40-byte block per queue.
QUEUE_BLOCK = 0x40


def RDBAL(i: int) -> int:
    """Receive descriptor base low of PF queue ``i``."""
    return 0x01000 + 0x40 * i if i < 64 else 0x0D000 + 0x40 * (i - 64)


def RDBAH(i: int) -> int:
    """Receive descriptor base high of PF queue ``i``."""
    return RDBAL(i) + 0x04


def RDLEN(i: int) -> int:
    """Receive descriptor ring length in bytes of PF queue ``i``."""
    return RDBAL(i) + 0x08


def RDH(i: int) -> int:
    """Receive descriptor head of PF queue ``i``."""
    return RDBAL(i) + 0x10


def SRRCTL(i: int) -> int:
    """Split receive control of PF queue ``i`` (canonical per-queue home)."""
    return RDBAL(i) + 0x14


def SRRCTL_82598_ALIAS(i: int) -> int:
    """The legacy alias of SRRCTL for queues 0..15."""
    return 0x02100 + 4 * i


def RDT(i: int) -> int:
    """Receive descriptor tail of PF queue ``i``."""
    return RDBAL(i) + 0x18


def RXDCTL(i: int) -> int:
    """Receive descriptor control of PF queue ``i``."""
    return RDBAL(i) + 0x28


# Offsets inside a queue block, for the kernels (which index a queue's block directly).
Q_RDBAL = 0x00
Q_RDBAH = 0x04
Q_RDLEN = 0x08
Q_RDH = 0x10
Q_SRRCTL = 0x14
Q_RDT = 0x18
Q_RXDCTL = 0x28
RX_QUEUE_BASE_LO = 0x01000  # queues 0..63
RX_QUEUE_BASE_HI = 0x0D000  # queues 64..127


def TDBAL(i: int) -> int:
    """Transmit descriptor base low of PF queue ``i``."""
    return 0x06000 + 0x40 * i


def TDBAH(i: int) -> int:
    """Transmit descriptor base high of PF queue ``i``."""
    return TDBAL(i) + 0x04


def TDLEN(i: int) -> int:
    """Transmit descriptor ring length of PF queue ``i``."""
    return TDBAL(i) + 0x08


def TDH(i: int) -> int:
    """Transmit descriptor head of PF queue ``i``."""
    return TDBAL(i) + 0x10


def TDT(i: int) -> int:
    """Transmit descriptor tail of PF queue ``i``."""
    return TDBAL(i) + 0x18


def TXDCTL(i: int) -> int:
    """Transmit descriptor control of PF queue ``i``."""
    return TDBAL(i) + 0x28


def TDWBAL(i: int) -> int:
    """Transmit head write-back address low of PF queue ``i``."""
    return TDBAL(i) + 0x38


def TDWBAH(i: int) -> int:
    """Transmit head write-back address high of PF queue ``i``."""
    return TDBAL(i) + 0x3C


TX_QUEUE_BASE = 0x06000
Q_TDBAL = 0x00
Q_TDBAH = 0x04
Q_TDLEN = 0x08
Q_TDH = 0x10
Q_TDT = 0x18
Q_TXDCTL = 0x28
Q_TDWBAL = 0x38
Q_TDWBAH = 0x3C

RXDCTL_ENABLE = 0x02000000
RXDCTL_SWFLSH = 0x04000000
RXDCTL_VME = 0x40000000
TXDCTL_ENABLE = 0x02000000
TXDCTL_SWFLSH = 0x04000000

SRRCTL_BSIZEPKT_MASK = 0x0000007F
SRRCTL_BSIZEPKT_SHIFT = 10  # value = bytes >> 10
SRRCTL_BSIZEHDR_MASK = 0x00003F00
SRRCTL_RDMTS_MASK = 0x01C00000
SRRCTL_DESCTYPE_MASK = 0x0E000000
SRRCTL_DESCTYPE_ADV_ONEBUF = 0x02000000
SRRCTL_DESCTYPE_HDR_SPLIT = 0x04000000
SRRCTL_DROP_EN = 0x10000000

REQ_RX_DESCRIPTOR_MULTIPLE = 8
MIN_RXD = 64
MAX_RXD = 4096
DEFAULT_RXD = 512

# --------------------------------------------------------------------------------------------
# VF BAR0 (ixgbevf regs.h, spec §1.1, §4.5, §5.9)
VFCTRL = 0x00000
VFSTATUS = 0x00008
VFLINKS = 0x00010
VTEICR = 0x00100
VTEICS = 0x00104
VTEIMS = 0x00108
VTEIMC = 0x0010C
VTEIAC = 0x00110
VTEIAM = 0x00114


def VTIVAR(x: int) -> int:
    """VF interrupt vector allocation for queue pair ``x``."""
    return 0x00120 + 4 * x


VTIVAR_MISC = 0x00140
IVAR_ALLOC_VAL = 0x80


def ivar_entry(ivar: int, queue: int, tx: bool = False) -> int | None:
    """The vector an (V)IVAR register routes ``queue``'s RX (or TX) cause to, or None if not valid.

    ``ivar`` is the register covering the queue pair ``queue >> 1`` (the layout of
    ``ixgbevf_set_ivar`` / ``ixgbe_set_ivar``: entry at bit ``16 * (queue & 1) + 8 * tx``).
    """
    entry = (ivar >> (16 * (queue & 1) + 8 * int(tx))) & 0xFF
    return entry & IVAR_VECTOR_MASK if entry & IVAR_ALLOC_VAL else None


def VTEITR(x: int) -> int:
    """VF interrupt throttle of vector ``x``."""
    return 0x00820 + 4 * x


VF_MSIX_VECTORS = 3  # 2 queue vectors (MAX_MSIX_Q_VECTORS) + 1 mailbox vector (NON_Q_VECTORS)
VF_QUEUE_VECTORS = 2
VTEICR_MASK = (1 << VF_MSIX_VECTORS) - 1  # one cause bit per VF vector
PF_MSIX_VECTORS = 64  # IXGBE_MAX_MSIX_VECTORS_82599


VFMBMEM = 0x00200
VFMAILBOX = 0x002FC
VFPSRTYPE = 0x00300

VFMAILBOX_REQ = 0x00000001
VFMAILBOX_ACK = 0x00000002
VFMAILBOX_VFU = 0x00000004
VFMAILBOX_PFU = 0x00000008
VFMAILBOX_PFSTS = 0x00000010
VFMAILBOX_PFACK = 0x00000020
VFMAILBOX_RSTI = 0x00000040
VFMAILBOX_RSTD = 0x00000080
VFMAILBOX_R2C_BITS = 0x000000B0


def VFRDBAL(x: int) -> int:
    """VF receive descriptor base low of VF queue ``x``."""
    return 0x01000 + 0x40 * x


def VFRDBAH(x: int) -> int:
    """VF receive descriptor base high of VF queue ``x``."""
    return 0x01004 + 0x40 * x


def VFRDLEN(x: int) -> int:
    """VF receive descriptor ring length of VF queue ``x``."""
    return 0x01008 + 0x40 * x


def VFRDH(x: int) -> int:
    """VF receive descriptor head of VF queue ``x``."""
    return 0x01010 + 0x40 * x


def VFRDT(x: int) -> int:
    """VF receive descriptor tail of VF queue ``x``."""
    return 0x01018 + 0x40 * x


def VFRXDCTL(x: int) -> int:
    """VF receive descriptor control of VF queue ``x``."""
    return 0x01028 + 0x40 * x


def VFSRRCTL(x: int) -> int:
    """VF split receive control of VF queue ``x``."""
    return 0x01014 + 0x40 * x


def VFTDBAL(x: int) -> int:
    """VF transmit descriptor base low of VF queue ``x``."""
    return 0x02000 + 0x40 * x


def VFTDBAH(x: int) -> int:
    """VF transmit descriptor base high of VF queue ``x``."""
    return 0x02004 + 0x40 * x


def VFTDLEN(x: int) -> int:
    """VF transmit descriptor ring length of VF queue ``x``."""
    return 0x02008 + 0x40 * x


def VFTDH(x: int) -> int:
    """VF transmit descriptor head of VF queue ``x``."""
    return 0x02010 + 0x40 * x


def VFTDT(x: int) -> int:
    """VF transmit descriptor tail of VF queue ``x``."""
    return 0x02018 + 0x40 * x


def VFTXDCTL(x: int) -> int:
    """VF transmit descriptor control of VF queue ``x``."""
    return 0x02028 + 0x40 * x


def VFTDWBAL(x: int) -> int:
    """VF transmit head write-back address low of VF queue ``x``."""
    return 0x02038 + 0x40 * x


def VFTDWBAH(x: int) -> int:
    """VF transmit head write-back address high of VF queue ``x``."""
    return 0x0203C + 0x40 * x


VF_RX_QUEUE_BASE = 0x01000
VF_TX_QUEUE_BASE = 0x02000
VF_MAX_QUEUES = 8  # IXGBE_VF_MAX_TX_QUEUES / RX_QUEUES

# VF statistics (read-only for the VF; 36-bit octet counters split LSB/MSB)
VFGPRC = 0x0101C
VFGORC_LSB = 0x01020
VFGORC_MSB = 0x01024
VFMPRC = 0x01034
VFGPTC = 0x0201C
VFGOTC_LSB = 0x02020
VFGOTC_MSB = 0x02024

# --------------------------------------------------------------------------------------------
# Advanced receive descriptor (16 bytes; spec §5.9)
RX_DESC_SIZE = 16
RXD_STAT_DD = 0x01
RXD_STAT_EOP = 0x02
RXD_STAT_VP = 0x08
RXDADV_ERR_RXE = 0x20000000
# Advanced transmit descriptor (16 bytes)
TX_DESC_SIZE = 16
ADVTXD_DTYP_DATA = 0x00300000
ADVTXD_DCMD_EOP = 0x01000000
ADVTXD_DCMD_IFCS = 0x02000000
ADVTXD_DCMD_RS = 0x08000000
ADVTXD_DCMD_DEXT = 0x20000000
ADVTXD_DCMD_VLE = 0x40000000
ADVTXD_PAYLEN_SHIFT = 14
TXD_STAT_DD = 0x00000001
ADVTXD_DTALEN_MASK = 0x0000FFFF  # cmd_type_len bits 15:0: bytes in this descriptor's buffer
ADVTXD_DTYP_MASK = 0x00F00000
ADVTXD_DTYP_CTXT = 0x00200000  # advanced context descriptor (with DEXT)
ADVTXD_STAT_DD_OFFSET = 12  # byte offset of the write-back status word (wb.status)
TDWBAL_HEAD_WB_ENABLE = 0x00000001  # TDWBAL bit 0: write the head to memory instead of DD
TX_MAX_DATA_DESCS = 40  # descriptors one frame may span (82599; DPDK IXGBE_TX_MAX_SEG)
TX_MAX_FRAME_SIZE = 15872  # largest frame the MAC sends, FCS included (15.5 KiB jumbo)
VMVIR_VLAN_TAG_MASK = 0x0000FFFF  # VID 11:0, CFI 12, PCP 15:13 of the inserted tag
VMVIR_VLANA_MASK = 0xC0000000  # 01 = always insert the default tag, 10 = never, 00 = per descriptor

# --------------------------------------------------------------------------------------------
# Ethernet (spec §6)
ETH_ALEN = 6
ETH_HLEN = 14
VLAN_HLEN = 4
ETH_FCS_LEN = 4
ETH_ZLEN = 60
ETH_P_8021Q = 0x8100
ETH_P_8021AD = 0x88A8
VLAN_VID_MASK = 0x0FFF
VLAN_PRIO_SHIFT = 13
MAX_JUMBO_FRAME_SIZE = 9728  # IXGBE_MAX_JUMBO_FRAME_SIZE
DEFAULT_MAX_FRAME = 1518  # ETH_FRAME_LEN + FCS
