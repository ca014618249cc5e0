"""Fuzz target: the transmit flow, compiled kernel against its golden twin.

The input bytes drive the transmit engineer's hypothesis strategies (``tests/test_tx_kernel.py``:
random devices, IOMMU maps, TX rings with valid chains, context descriptors, missing EOP, garbage
addresses and command words, frames with own/foreign source MACs and VLAN tags) through
hypothesis's ``fuzz_one_input``, so atheris mutates the same choice sequence hypothesis would
draw. Both implementations run on two identical devices; the wire, guest memory, registers,
counters and fault log must agree and the counters must be conserved.

    python fuzz/fuzz_tx.py -max_total_time=60

``--concurrent`` (issue 17): a hostile guest instead. Two guest CPUs (``mutate_words`` of
``tests/guest_cpu/guest_writer.c``, built here with the system C compiler, run without the
GIL) rewrite VF 0's TX descriptors and frame bytes while the compiled kernel runs on them; each
execution posts a fresh random ring (chains, context descriptors, missing EOP, lengths from 0
to 0xFFFF, addresses in and out of the domain, own and foreign source MACs and VLANs) and runs
the transmit engine once. Nothing can be compared with the golden model (the guest's timing
decides), so invariants are checked instead: no crash; every frame on the wire and every copy
delivered to VF 1 carries VF 0's own source MAC and a VLAN it may use (spoof checking is on);
lengths are sane; VF 1's memory outside its RX ring and buffers is untouched; every counter is
conserved. A plain seeded loop (atheris is not needed):

    python fuzz/fuzz_tx.py --concurrent -runs=1000000 -seed=1
    python fuzz/fuzz_tx.py --concurrent -max_total_time=60
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]  # the sriov of this checkout, and its TX test strategies

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def _target():
    import test_tx_kernel as T

    @settings(database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(cfg=st.one_of(T.device_config(), T.device_config(sane=True)))
    def compiled_and_golden_agree(cfg) -> None:
        T.check_agreement(cfg)

    return compiled_and_golden_agree.hypothesis.fuzz_one_input


_run = None


def TestOneInput(data: bytes) -> None:
    global _run
    if _run is None:
        _run = _target()
    _run(data)


def main() -> None:
    if "--concurrent" in sys.argv:
        from _tx_concurrent import main as concurrent_main

        concurrent_main([a for a in sys.argv[1:] if a != "--concurrent"])
        return
    import atheris

    with atheris.instrument_imports():
        import sriov.golden.rx
        import sriov.golden.tx  # noqa: F401
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
