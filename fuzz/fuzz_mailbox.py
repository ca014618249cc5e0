"""Fuzz target: a VF's BAR0 write/read sequences against the mailbox and the PF driver.

One port, two VFs: VF 0 is driven by the fuzz input (register writes and reads anywhere in its
BAR and beyond, whole mailbox messages with any opcode and words, doorbell bits in any order,
simulated time passing); VF 1 runs ixgbevf and keeps talking to the PF between the attacker's
steps. Nothing may raise except the device refusing VF 0's own bad access (RegisterAccessError);
the PF driver never raises; VF 1's every transaction succeeds, its switch/filter state and the
PF's view of it are untouched, it keeps its link and receives its frames; counters add up.

    python fuzz/fuzz_mailbox.py -max_total_time=60
"""

from __future__ import annotations

import contextlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # _reader, and the sriov of this checkout

from _reader import Reader  # noqa: E402

GOOD_MAC = "02:00:00:00:00:11"
EVIL_MAC = "02:00:00:00:00:10"
GROUP = "01:00:5e:00:00:42"
VALUES = [0, 1, 2, 4, 8, 0x10, 0x20, 0x40, 0x80, 0xFFFFFFFF, 0x80000000, 0x40000000, 0x20000000, 0x04000000]
DELAYS = [0, 1_000, 10_000, 500_000, 10_000_000, 2_000_000_000]


def _offsets():
    from sriov.hw import regs as R

    table = [R.VFMAILBOX] * 8 + [R.VFMBMEM + 4 * i for i in range(16)]
    table += [R.VFCTRL, R.VFSTATUS, R.VFLINKS, R.VTEICR, R.VTEICS, R.VTEIMS, R.VTEIMC, R.VTEIAC, R.VTEIAM]
    table += [R.VTIVAR_MISC, R.VTIVAR(0), R.VTEITR(0), R.VFPSRTYPE, R.VFGPRC, R.VFGPTC]
    for q in range(4):
        table += [f(q) for f in (R.VFRDBAL, R.VFRDLEN, R.VFRDH, R.VFRDT, R.VFRXDCTL, R.VFSRRCTL)]
        table += [f(q) for f in (R.VFTDBAL, R.VFTDLEN, R.VFTDH, R.VFTDT, R.VFTXDCTL, R.VFTDWBAL)]
    return table


def _opcodes():
    from sriov.drivers import mailbox as M

    return [*M.OPCODES, M.IXGBE_PF_CONTROL_MSG, 0x7777, 0xFFFF, 0]


def decode(data: bytes) -> list[tuple]:
    """The attacker's steps: ('w', off, val) | ('r', off) | ('t', ns) | ('m', words, doorbell) | ('g',)."""
    from sriov.hw import regs as R

    offsets, opcodes = _offsets(), _opcodes()
    r = Reader(data)
    steps: list[tuple] = []
    while r.left and len(steps) < 200:
        op = r.u8() % 10
        if op < 4:
            sel = r.u8()
            if sel < 200:
                off = offsets[sel % len(offsets)]
            elif sel < 240:
                off = 4 * r.below(R.VF_BAR0_SIZE // 4)
            else:
                off = r.pick([R.VF_BAR0_SIZE, -4, 2, 0x10000, 2**40])
            steps.append(("w", off, r.pick(VALUES) if r.flag() else r.u32()))
        elif op == 4:
            steps.append(("r", offsets[r.below(len(offsets))]))
        elif op == 5:
            steps.append(("t", r.pick(DELAYS)))
        elif op < 9:
            n = 1 + r.below(16)
            words = [r.pick(opcodes) | (r.u8() << 16) | (r.u8() & 0xE0) << 24] + [
                r.u32() for _ in range(n - 1)
            ]
            steps.append(("m", words, r.pick([R.VFMAILBOX_REQ] * 4 + [R.VFMAILBOX_ACK, R.VFMAILBOX_VFU, 0])))
        else:
            steps.append(("g",))
    return steps


class Rig:
    """A fresh host: the attacker's VF 0 (memory mapped, no driver) and ixgbevf on VF 1."""

    def __init__(self) -> None:
        from sriov.host import Host

        self.host = host = Host(seed=1)
        self.port = port = host.add_port("eth0")
        self.pf = pf = port.pf
        pf.set_numvfs(2)
        pf.set_vf(0, mac=EVIL_MAC)
        pf.set_vf(1, mac=GOOD_MAC)
        vm = host.add_vm("good", memory=2 << 20)
        self.good = host.assign(port.vf(1), vm)
        self.good.up()
        self.good.set_multicast([GROUP])
        evil = host.add_vm("evil", memory=1 << 20)
        self.fn = port.vf(0)
        self.fn.domain.map(0, evil.memory.buffer, 0, evil.memory.size, writable=True)
        host.clock.advance(10_000_000)
        assert self.good.link_up

    def good_state(self) -> tuple:
        """What the attacker must not change: VF 1's filters, pool bits and the PF's view of it."""
        from sriov.hw import regs as R

        d = self.port.device
        bit = 1 << 1
        rars = sorted(tuple(d.state.rar[i].tolist()) for i in range(R.NUM_RAR) if int(d.state.mpsar[i]) & bit)
        vlans = sorted(int(d.state.vlvf[j]) for j in range(R.NUM_VLVF) if int(d.state.vlvfb[j]) & bit)
        q = d.vf_queue(1, 0)
        ring = [
            d.pf.read32(R.RDBAL(q) + f) for f in (R.Q_RDBAL, R.Q_RDBAH, R.Q_RDLEN, R.Q_SRRCTL, R.Q_RXDCTL)
        ]
        cfg = self.pf.vf_config(1)
        return (
            rars,
            vlans,
            int(d.state.vmolr[1]),
            int(d.state.vmvir[1]),
            int(d.state.vfre[0]) & bit,
            int(d.state.vfte[0]) & bit,
            sorted(self.pf.vfinfo[1].mc_hashes),
            ring,
            cfg,
        )


def run_steps(steps: list[tuple]) -> None:
    """Run the attacker's steps; raise on any broken promise."""
    from sriov.batch import Batch
    from sriov.errors import RegisterAccessError
    from sriov.hw import regs as R
    from sriov.invariants import conservation_errors

    rig = Rig()
    fn, clock, good = rig.fn, rig.host.clock, rig.good
    before = rig.good_state()
    nacks_before = rig.pf.vf_counters(1)["nacks_sent"]
    for step in steps:
        kind = step[0]
        if kind == "w":
            with contextlib.suppress(RegisterAccessError):  # refused: the attacker's own problem
                fn.write32(step[1], step[2])
        elif kind == "r":
            fn.read32(step[1])
        elif kind == "t":
            clock.advance(step[1])
        elif kind == "m":
            for i, w in enumerate(step[1]):
                fn.write32(R.VFMBMEM + 4 * i, w)
            fn.write32(R.VFMAILBOX, step[2])
        else:
            good.set_multicast([GROUP])  # raises MailboxError if the PF failed to answer it
    clock.advance(2_000_000_000)
    good.set_multicast([GROUP])
    clock.advance(10_000_000)
    assert good.link_up, "the good VF lost its link"
    assert rig.good_state() == before, "the attacker changed the good VF's state"
    assert rig.pf.vf_counters(1)["nacks_sent"] == nacks_before, "the PF refused the good VF"
    frame = bytes.fromhex(GOOD_MAC.replace(":", "")) + bytes.fromhex("020000000099") + b"\x08\x00" + bytes(50)
    result = rig.port.wire.receive(Batch.from_frames([frame]))
    assert int(result.delivered[0]) == 1 << 1, f"the good VF's frame went to {result.verdict(0)}"
    assert len(good.rx_poll(64)) >= 1
    errors = conservation_errors(rig.port.device)
    assert not errors, errors


def TestOneInput(data: bytes) -> None:
    run_steps(decode(data))


def main() -> None:
    import atheris

    with atheris.instrument_imports():
        import sriov.drivers.mailbox
        import sriov.drivers.pf
        import sriov.drivers.vf
        import sriov.hw.device
        import sriov.hw.interrupts  # noqa: F401
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
