"""The IOMMU: per-function domains, 4 KiB pages, faults recorded and counted (issue 2)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sriov.errors import ConfigError, DmaFault
from sriov.hw.iommu import PAGE_SIZE, Iommu


@pytest.fixture
def iommu() -> Iommu:
    return Iommu()


def test_map_translate_read_write(iommu: Iommu) -> None:
    ram = np.zeros(16 * PAGE_SIZE, np.uint8)
    dom = iommu.new_domain("eth0/vf0")
    dom.map(0x100000, ram, 2 * PAGE_SIZE, 4 * PAGE_SIZE)
    dom.write(0x100000 + 10, b"hello")
    assert bytes(ram[2 * PAGE_SIZE + 10 : 2 * PAGE_SIZE + 15]) == b"hello"
    assert dom.read(0x100000 + 10, 5) == b"hello"
    # a range crossing pages that are contiguous in the host buffer
    view = dom.translate(0x100000 + PAGE_SIZE - 2, 4, write=True)
    assert view.base is not None and len(view) == 4


def test_miss_is_a_recorded_counted_fault_and_writes_nothing(iommu: Iommu) -> None:
    ram = np.zeros(4 * PAGE_SIZE, np.uint8)
    dom = iommu.new_domain("eth0/vf1")
    dom.map(0, ram, 0, PAGE_SIZE)
    with pytest.raises(DmaFault) as info:
        dom.write(PAGE_SIZE - 2, b"abcd")  # second page not mapped
    assert info.value.kind == "not-mapped" and info.value.address == PAGE_SIZE
    assert not ram.any(), "a faulting write must write nothing"
    assert dom.fault_count == 1
    fault = iommu.faults()[-1]
    assert (fault.function, fault.address, fault.kind) == ("eth0/vf1", PAGE_SIZE, "not-mapped")


def test_write_to_read_only_page_faults(iommu: Iommu) -> None:
    ram = np.zeros(PAGE_SIZE, np.uint8)
    dom = iommu.new_domain("fn")
    dom.map(0x2000, ram, 0, PAGE_SIZE, writable=False)
    assert dom.read(0x2000, 4) == b"\0\0\0\0"
    with pytest.raises(DmaFault, match="write-to-read-only"):
        dom.write(0x2000, b"x")
    assert dom.fault_count == 1


def test_domains_are_isolated(iommu: Iommu) -> None:
    a_ram, b_ram = np.zeros(PAGE_SIZE, np.uint8), np.zeros(PAGE_SIZE, np.uint8)
    a, b = iommu.new_domain("a"), iommu.new_domain("b")
    a.map(0, a_ram, 0, PAGE_SIZE)
    b.map(PAGE_SIZE, b_ram, 0, PAGE_SIZE)
    with pytest.raises(DmaFault):
        a.write(PAGE_SIZE, b"x")  # b's IOVA means nothing in a's domain
    assert not b_ram.any()
    assert (a.fault_count, b.fault_count) == (1, 0)


def test_unmap_then_fault(iommu: Iommu) -> None:
    ram = np.zeros(2 * PAGE_SIZE, np.uint8)
    dom = iommu.new_domain("fn")
    dom.map(0, ram, 0, 2 * PAGE_SIZE)
    dom.unmap(PAGE_SIZE, PAGE_SIZE)
    dom.write(0, b"ok")
    with pytest.raises(DmaFault):
        dom.write(PAGE_SIZE, b"no")


@pytest.mark.parametrize(
    "iova,offset,size,match",
    [(1, 0, PAGE_SIZE, "multiples"), (0, 1, PAGE_SIZE, "offset"), (0, 0, 3 * PAGE_SIZE, "exceeds"),
     (0, 0, 0, "multiples"), (1 << 40, 0, PAGE_SIZE, "above")],
)  # fmt: skip
def test_bad_mappings_are_refused_and_change_nothing(
    iommu: Iommu, iova: int, offset: int, size: int, match: str
) -> None:
    ram = np.zeros(2 * PAGE_SIZE, np.uint8)
    dom = iommu.new_domain("fn")
    before = dom.page_table.copy()
    with pytest.raises(ConfigError, match=match):
        dom.map(iova, ram, offset, size)
    assert np.array_equal(dom.page_table, before)


def test_overlapping_map_is_refused(iommu: Iommu) -> None:
    ram = np.zeros(4 * PAGE_SIZE, np.uint8)
    dom = iommu.new_domain("fn")
    dom.map(0, ram, 0, 2 * PAGE_SIZE)
    with pytest.raises(ConfigError, match="overlaps"):
        dom.map(PAGE_SIZE, ram, 2 * PAGE_SIZE, 2 * PAGE_SIZE)


def test_buffer_must_be_contiguous_uint8(iommu: Iommu) -> None:
    dom = iommu.new_domain("fn")
    with pytest.raises(ConfigError):
        dom.map(0, np.zeros(PAGE_SIZE, np.uint16), 0, PAGE_SIZE)
    with pytest.raises(ConfigError):
        dom.map(0, np.zeros(2 * PAGE_SIZE, np.uint8)[::2], 0, PAGE_SIZE)


@settings(max_examples=100, deadline=None)
@given(
    pages=st.lists(st.tuples(st.integers(0, 63), st.booleans()), max_size=20, unique_by=lambda t: t[0]),
    accesses=st.lists(
        st.tuples(st.integers(0, 64 * PAGE_SIZE), st.integers(1, 300), st.booleans()), max_size=30
    ),
)
def test_translation_agrees_with_a_dictionary_model(
    pages: list[tuple[int, bool]], accesses: list[tuple[int, int, bool]]
) -> None:
    """Every access either lands exactly where a page dictionary says, or faults and writes nothing."""
    iommu = Iommu()
    ram = np.zeros(64 * PAGE_SIZE, np.uint8)
    dom = iommu.new_domain("fn")
    model: dict[int, bool] = {}
    for page, writable in pages:
        dom.map(page * PAGE_SIZE, ram, page * PAGE_SIZE, PAGE_SIZE, writable)
        model[page] = writable
    faults = 0
    for addr, size, write in accesses:
        touched = range(addr // PAGE_SIZE, (addr + size - 1) // PAGE_SIZE + 1)
        ok = all(p in model and (model[p] or not write) for p in touched)
        snapshot = ram.copy()
        try:
            if write:
                dom.write(addr, bytes([0xAB]) * size)
            else:
                dom.read(addr, size)
        except DmaFault:
            faults += 1
            assert not ok
            assert np.array_equal(ram, snapshot)
        else:
            assert ok
            if write:
                assert (ram[addr : addr + size] == 0xAB).all()
    assert dom.fault_count == faults
