"""Compiled filter primitives agree with their golden twins (issue 2, item 7)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sriov import _fastpath, golden

macs_strategy = hnp.arrays(np.uint8, st.tuples(st.integers(0, 64), st.just(6)))


@given(macs=macs_strategy, mo=st.integers(0, 3))
def test_mta_vectors_compiled_matches_golden(macs: np.ndarray, mo: int) -> None:
    fast, slow = np.zeros(len(macs), np.uint16), np.zeros(len(macs), np.uint16)
    _fastpath.mta_vectors(macs, mo, fast)
    golden.mta_vectors(macs, mo, slow)
    assert np.array_equal(fast, slow)
    assert (fast < 4096).all()


def test_mta_vector_known_values() -> None:
    # 01:00:5e:00:00:fb (mDNS): bits 47:36 of the address -> 0xFB0 with MO=0
    assert golden.mta_vector(bytes.fromhex("01005e0000fb"), 0) == 0xFB0
    assert golden.mta_vector(bytes.fromhex("01005e0000fb"), 3) == 0xFB00 & 0xFFF
    # 33:33:00:00:00:01 with MO=1: bits 46:35 -> (a[4] >> 3) | (a[5] << 5) = 0x020
    assert golden.mta_vector(bytes.fromhex("333300000001"), 1) == 0x020


rar_entries = st.lists(
    st.tuples(st.binary(min_size=6, max_size=6), st.booleans(), st.integers(0, 2**64 - 1)), max_size=128
)


@settings(max_examples=200, deadline=None)
@given(entries=rar_entries, probes=st.lists(st.binary(min_size=6, max_size=6), max_size=20), pick=st.data())
def test_rar_lookup_compiled_matches_golden(entries, probes, pick) -> None:
    rar = np.zeros((128, 2), np.uint32)
    mpsar = np.zeros(128, np.uint64)
    for i, (mac, valid, pools) in enumerate(entries):
        rar[i, 0] = int.from_bytes(mac[:4], "little")
        rar[i, 1] = int.from_bytes(mac[4:], "little") | (0x80000000 if valid else 0)
        mpsar[i] = pools
    if entries:  # probe some addresses that are in the table too
        probes = probes + [pick.draw(st.sampled_from(entries))[0] for _ in range(3)]
    macs = (
        np.frombuffer(b"".join(probes), np.uint8).reshape(-1, 6).copy()
        if probes
        else np.zeros((0, 6), np.uint8)
    )
    fast, slow = np.zeros(len(macs), np.uint64), np.zeros(len(macs), np.uint64)
    _fastpath.rar_lookup(rar, mpsar, macs, fast)
    golden.rar_lookup(rar, mpsar, macs, slow)
    assert np.array_equal(fast, slow)


def test_rar_lookup_ors_every_matching_entry() -> None:
    rar = np.zeros((128, 2), np.uint32)
    mpsar = np.zeros(128, np.uint64)
    mac = bytes.fromhex("020000000010")
    for i, pools in ((5, 0b01), (9, 0b100)):  # one MAC in two pools, as the Linux PF stores it
        rar[i] = (int.from_bytes(mac[:4], "little"), int.from_bytes(mac[4:], "little") | 0x80000000)
        mpsar[i] = pools
    out = np.zeros(1, np.uint64)
    _fastpath.rar_lookup(rar, mpsar, np.frombuffer(mac, np.uint8).reshape(1, 6).copy(), out)
    assert out[0] == 0b101


@pytest.mark.parametrize("impl", [_fastpath, golden], ids=["compiled", "golden"])
def test_bad_shapes_are_refused(impl) -> None:
    with pytest.raises(ValueError):
        impl.mta_vectors(np.zeros((2, 5), np.uint8), 0, np.zeros(2, np.uint16))
    with pytest.raises(ValueError):
        impl.mta_vectors(np.zeros((2, 6), np.uint8), 4, np.zeros(2, np.uint16))
    with pytest.raises(ValueError):
        impl.rar_lookup(np.zeros((128, 2), np.uint32), np.zeros(127, np.uint64), np.zeros((1, 6), np.uint8),
                        np.zeros(1, np.uint64))  # fmt: skip
