"""Fuzz target: the transmit flow, compiled kernel against its golden twin.

The input bytes drive the transmit engineer's hypothesis strategies (``tests/test_tx_kernel.py``:
random devices, IOMMU maps, TX rings with valid chains, context descriptors, missing EOP, garbage
addresses and command words, frames with own/foreign source MACs and VLAN tags) through
hypothesis's ``fuzz_one_input``, so atheris mutates the same choice sequence hypothesis would
draw. Both implementations run on two identical devices; the wire, guest memory, registers,
counters and fault log must agree and the counters must be conserved.

    python fuzz/fuzz_tx.py -max_total_time=60
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
    import atheris

    with atheris.instrument_imports():
        import sriov.golden.rx
        import sriov.golden.tx  # noqa: F401
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
