"""No sequence of VF register writes can touch another VF's mailbox or any PF register
beyond the bits that belong to that VF (issue 2, hypothesis)."""

from __future__ import annotations

import contextlib

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sriov.errors import RegisterAccessError
from sriov.hw import regs as R
from sriov.hw.clock import SimClock
from sriov.hw.device import Device82599
from sriov.hw.iommu import Iommu

NUM_VFS = 40
INTERESTING = sorted(
    {R.VFCTRL, R.VFSTATUS, R.VFLINKS, R.VTEICR, R.VTEICS, R.VTEIMS, R.VTEIMC, R.VTEIAM, R.VTIVAR_MISC,
     R.VFMAILBOX, R.VFPSRTYPE, R.VFGPRC, R.VFGPTC}
    | {R.VFMBMEM + 4 * i for i in range(16)}
    | {f(q) for q in range(8) for f in (R.VFRDBAL, R.VFRDLEN, R.VFRDH, R.VFRDT, R.VFRXDCTL, R.VFSRRCTL,
                                        R.VFTDBAL, R.VFTDT, R.VFTXDCTL, R.VFTDWBAL)}
)  # fmt: skip
offsets = st.one_of(
    st.sampled_from(INTERESTING), st.integers(0, R.VF_BAR0_SIZE // 4 - 1).map(lambda w: 4 * w)
)
values = st.one_of(st.integers(0, 0xFFFFFFFF), st.sampled_from([0, 1, 2, 4, 0x84, R.CTRL_RST, 0xFFFFFFFF]))


def allowed_pf_words(dev: Device82599, n: int) -> dict[int, int]:
    """PF register words VF n may change, each with the mask of bits it may change."""
    allowed: dict[int, int] = {}

    def allow(offset: int, mask: int = 0xFFFFFFFF) -> None:
        allowed[offset // 4] = allowed.get(offset // 4, 0) | mask

    for i in range(16):
        allow(R.PFMBMEM(n) + 4 * i)
    for q in range(dev.queues_per_pool()):
        pq = dev.vf_queue(n, q)
        for off in (R.RDBAL, R.RDBAH, R.RDLEN, R.RDH, R.SRRCTL, R.RDT, R.RXDCTL):
            allow(off(pq))
        for off in (R.TDBAL, R.TDBAH, R.TDLEN, R.TDH, R.TDT, R.TXDCTL, R.TDWBAL, R.TDWBAH):
            allow(off(pq))
    allow(R.MBVFICR(n >> 4), (R.MBVFICR_VFREQ_VF1 | R.MBVFICR_VFACK_VF1) << (n % 16))
    allow(R.VFLRE(n >> 5), 1 << (n % 32))
    allow(R.VFRE(n >> 5), 1 << (n % 32))
    allow(R.VFTE(n >> 5), 1 << (n % 32))
    allow(R.EICR, R.EICR_MAILBOX)
    return allowed


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(0, NUM_VFS - 1),
    mode=st.sampled_from([R.GCR_EXT_VT_MODE_64, R.GCR_EXT_VT_MODE_32]),
    writes=st.lists(st.tuples(offsets, values), max_size=40),
)
def test_vf_writes_stay_inside_the_vf(n: int, mode: int, writes: list[tuple[int, int]]) -> None:
    dev = Device82599("eth0", SimClock(), Iommu())
    dev.sriov_enable(NUM_VFS)
    pf = dev.pf
    pf.write32(R.CTRL_EXT, R.CTRL_EXT_PFRSTD)
    pf.write32(R.GCR_EXT, mode)
    for reg in (R.VFRE(0), R.VFRE(1), R.VFTE(0), R.VFTE(1)):
        pf.write32(reg, 0xFFFFFFFF)
    rng = np.random.default_rng(n)
    dev.regs[R.PFMBMEM(0) // 4 : R.PFMBMEM(NUM_VFS) // 4] = rng.integers(
        0, 2**32, NUM_VFS * 16, dtype=np.uint32
    )
    regs_before = dev.regs.copy()
    vf_regs_before = dev.vf_regs.copy()
    mbx_before = dev.mbx.copy()
    qde_before = dev.qde.copy()

    vf = dev.vf(n)
    for offset, value in writes:
        with contextlib.suppress(RegisterAccessError):  # refused: nothing may have changed
            vf.write32(offset, value)
        vf.read32(offset)
    dev.clock.advance(100_000)

    changed = np.flatnonzero(dev.regs != regs_before)
    allowed = allowed_pf_words(dev, n)
    for word in changed.tolist():
        diff = int(dev.regs[word]) ^ int(regs_before[word])
        assert word in allowed, f"VF {n} changed PF register {4 * word:#x}"
        assert diff & ~allowed[word] == 0, f"VF {n} changed foreign bits {diff:#x} of {4 * word:#x}"
    others = np.arange(len(dev.mbx)) != n
    assert np.array_equal(dev.mbx[others], mbx_before[others])
    assert np.array_equal(dev.vf_regs[others], vf_regs_before[others])
    assert np.array_equal(dev.qde, qde_before)
