"""Bad arguments to administrator and API calls: the package's error, a useful message, no change.

A hypothesis property (issue 8): on a live host (PF up, VFs assigned and up, traffic seen), any
sequence of calls with bad arguments (``set_vf``, ``set_numvfs``, ``set_mtu``, ``add_vlan``,
``set_multicast``, ``set_rx_mode``, ``set_coalesce``, the Batch constructors, ``Wire.receive``
with bad batches, GuestMemory and IOMMU calls) raises a `SriovError` whose message names what
was wrong, and a snapshot of the device registers, counters, IOMMU page tables, guest memory
allocators and both drivers' state is the same before and after.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sriov.batch import Batch
from sriov.errors import SriovError
from sriov.host import Host
from sriov.memory import GuestMemory

MAC0 = "02:00:00:00:03:00"

# -- values that are wrong for an argument, by kind ---------------------------------------------
not_an_int = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=True), st.text(max_size=4), st.just([1]), st.just(b"1")
)


def bad_int(low: int, high: int):
    """Anything but an int in [low, high]."""
    return st.one_of(
        not_an_int,
        st.integers(max_value=low - 1),
        st.integers(min_value=high + 1),
        st.sampled_from([low - 1, high + 1, -(2**63), 2**64]),
    )


bad_bool = st.one_of(st.none(), st.integers(), st.text(max_size=3), st.floats())
bad_mac = st.one_of(
    st.sampled_from(
        [
            "",
            "zz:00:00:00:00:00",
            "02:00:00:00:00",
            "02:00:00:00:00:00:00",
            "01:00:5e:00:00:01",
            "ff:ff:ff:ff:ff:ff",
        ]
    ),
    st.binary(max_size=5),
    st.binary(min_size=7, max_size=9),
    st.integers(),
    st.none(),
    st.just([2, 0, 0, 0, 0, 256]),
)
bad_mc_list = st.one_of(
    st.just("01:00:5e:00:00:01"),  # a string is not a list of addresses
    st.none(),
    st.integers(),
    st.lists(
        st.sampled_from(["02:00:00:00:00:01", "zz", "", None, 7, "01:00:5e:00:00"]), min_size=1, max_size=3
    ),
)


class Rig:
    """A live host: PF up with 4 VFs, two assigned and up, some traffic through."""

    def __init__(self) -> None:
        self.host = host = Host(seed=5)
        self.port = port = host.add_port("eth0")
        self.pf = port.pf
        self.pf.set_numvfs(4)
        self.pf.set_vf(0, mac=MAC0)
        self.vm = host.add_vm("vm", memory=4 << 20)
        self.nic = host.assign(port.vf(0), self.vm)
        self.nic.up()
        self.nic.add_vlan(7)
        self.nic2 = host.assign(port.vf(1), self.vm)
        self.nic2.up()
        host.clock.advance(1_000_000_000)
        frame = bytes.fromhex(MAC0.replace(":", "")) + bytes.fromhex("020000000099") + b"\x08\x00" + bytes(50)
        port.wire.receive(Batch.from_frames([frame] * 3))
        self.memory = GuestMemory(1 << 20, "scratch")
        self.domain = port.vf(2).domain

    def snapshot(self) -> dict:
        dev, pf = self.port.device, self.pf
        nics = []
        for nic in (self.nic, self.nic2):
            nics.append(
                (
                    nic.mac,
                    nic.mtu,
                    list(nic.vlans),
                    list(nic.mc_addrs),
                    nic.promisc,
                    nic.allmulti,
                    nic.rx_usecs,
                    nic.is_up,
                    nic.link_up,
                    nic.xcast_mode,
                )
            )
        return {
            "regs": dev.regs.copy(),
            "vf_regs": dev.vf_regs.copy(),
            "mbx": dev.mbx.copy(),
            "qde": dev.qde.copy(),
            "port": dev.state.port_counters.copy(),
            "pool": dev.state.pool_counters.copy(),
            "pt": [d.page_table.copy() for d in self.host.iommu.domains],
            "faults": int(self.host.iommu.fault_total[0]),
            "pf": (
                pf.num_vfs,
                pf.mtu,
                pf.promisc,
                pf.allmulti,
                list(pf.mc_list),
                [pf.vf_config(v) for v in range(pf.num_vfs)],
                copy.deepcopy(pf.vfinfo),
                [None if e is None else (e.mac, e.pool) for e in pf.mac_table],
            ),
            "nics": nics,
            "alloc": (self.vm.memory.allocated, self.memory.allocated, self.host.memory.allocated),
            "vms": sorted(self.host.vms),
            "ports": sorted(self.host.ports),
            "clock": self.host.clock.now,
        }


def same(a: dict, b: dict) -> list[str]:
    diffs = []
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, np.ndarray):
            if not np.array_equal(x, y):
                diffs.append(f"{key} at {np.flatnonzero(x != y)[:5].tolist()}")
        elif key == "pt":
            if any(not np.array_equal(p, q) for p, q in zip(x, y, strict=True)):
                diffs.append("IOMMU page tables")
        elif x != y:
            diffs.append(key)
    return diffs


# -- the bad calls: (strategy of a call on a rig, words the message must contain one of) -------------
def _bad_batch_arrays(draw) -> tuple:
    kind = draw(st.integers(0, 7))
    data = np.zeros(100, np.uint8)
    offs = np.array([0, 10], np.int64)
    lens = np.array([10, 10], np.uint32)
    if kind == 0:
        data = data.astype(np.int16)
    elif kind == 1:
        offs = np.array([-1, 0], np.int64)
    elif kind == 2:
        lens = np.array([10, 91], np.uint32)  # past the end
    elif kind == 3:
        offs = np.array([2**63 - 5, 0], np.int64)  # offset + length wraps round int64
    elif kind == 4:
        lens = np.array([10], np.uint32)
    elif kind == 5:
        data = np.zeros((10, 10), np.uint8)
    elif kind == 6:
        offs = offs.astype(np.int32)
    else:
        data = list(range(100))
    return data, offs, lens


@st.composite
def bad_call(draw) -> tuple[str, Callable[[Rig], object], tuple[str, ...]]:
    which = draw(
        st.sampled_from(
            [
                "set_vf",
                "set_vf_mixed",
                "set_numvfs",
                "set_numvfs_change",
                "pf_set_mtu",
                "add_vlan",
                "nic_set_mtu",
                "set_multicast",
                "pf_set_multicast",
                "set_rx_mode",
                "set_coalesce",
                "batch",
                "from_frames",
                "receive",
                "memory",
                "alloc",
                "view",
                "map",
                "unmap",
                "host",
            ]
        )
    )
    if which == "set_vf":
        key, value = draw(
            st.one_of(
                st.tuples(st.just("vf"), bad_int(0, 3)),
                st.tuples(st.just("mac"), bad_mac.filter(lambda m: m != "")),
                st.tuples(st.just("vlan"), bad_int(0, 4095)),
                st.tuples(st.just("qos"), bad_int(0, 7)),
                st.tuples(st.just("spoofchk"), bad_bool),
                st.tuples(st.just("trust"), bad_bool),
                st.tuples(st.just("state"), st.one_of(st.text(max_size=5), st.none(), st.integers())),
                st.tuples(st.just("query_rss"), bad_bool),
            )
        )
        if value is None and key != "vf":
            value = "none"  # None means "leave as is" for set_vf's keyword arguments
        if key == "vf":
            return which, lambda r: r.pf.set_vf(value, vlan=3), ("VF", "vf")
        return which, lambda r: r.pf.set_vf(1, **{key: value}), (key, "MAC", "VF 1")
    if which == "set_vf_mixed":  # good arguments beside one bad one: nothing may be applied
        bad = draw(bad_int(0, 7).filter(lambda v: v is not None))
        return (
            which,
            lambda r: r.pf.set_vf(1, mac="02:00:00:00:03:01", vlan=9, spoofchk=False, qos=bad),
            ("qos",),
        )
    if which == "set_numvfs":
        n = draw(bad_int(0, 63))
        return which, lambda r: r.pf.set_numvfs(n), ("num_vfs",)
    if which == "set_numvfs_change":
        n = draw(st.integers(1, 63).filter(lambda k: k != 4))
        return which, lambda r: r.pf.set_numvfs(n), ("disable", "0")
    if which == "pf_set_mtu":
        m = draw(bad_int(68, 9710))
        return which, lambda r: r.pf.set_mtu(m), ("MTU",)
    if which == "add_vlan":
        v = draw(bad_int(0, 4095))
        return which, lambda r: r.nic.add_vlan(v), ("VLAN",)
    if which == "nic_set_mtu":
        m = draw(bad_int(68, 9710))
        return which, lambda r: r.nic.set_mtu(m), ("MTU",)
    if which == "set_multicast":
        lst = draw(bad_mc_list)
        return which, lambda r: r.nic.set_multicast(lst), ("multicast", "MAC", "address")
    if which == "pf_set_multicast":
        lst = draw(bad_mc_list)
        return which, lambda r: r.pf.set_multicast(lst), ("multicast", "MAC", "address")
    if which == "set_rx_mode":
        p, a = draw(st.one_of(st.tuples(bad_bool, st.booleans()), st.tuples(st.booleans(), bad_bool)))
        return which, lambda r: r.nic.set_rx_mode(promisc=p, allmulti=a), ("promisc", "allmulti")
    if which == "set_coalesce":
        u = draw(bad_int(0, 1022))
        return which, lambda r: r.nic.set_coalesce(u), ("rx-usecs",)
    if which == "batch":
        data, offs, lens = _bad_batch_arrays(draw)
        ctor = draw(st.sampled_from(["init", "from_arrays"]))
        if ctor == "init":
            return which, lambda r: Batch(data, offs, lens), ("Batch", "frame", "offsets")
        return which, lambda r: Batch.from_arrays(data, offs, lens), ("Batch", "frame", "offsets")
    if which == "from_frames":
        frames, ts = draw(
            st.one_of(
                st.tuples(st.just([b"ab", 7]), st.none()),
                st.tuples(st.just([b"ab", None]), st.none()),
                st.tuples(st.just(["text"]), st.none()),
                st.tuples(st.just([b"ab", b"cd"]), st.just([1])),
                st.tuples(st.just([b"ab"]), st.just(["x"])),
                st.tuples(st.just([b"ab"]), st.just([2**70])),
                st.tuples(st.just(7), st.none()),
            )
        )
        return which, lambda r: Batch.from_frames(frames, ts), ("frame", "timestamp", "Batch")
    if which == "receive":
        thing = draw(st.sampled_from(["list", "bytes", "unvalidated", "none"]))

        def receive(r: Rig) -> object:
            if thing == "list":
                return r.port.wire.receive([b"\xff" * 60])
            if thing == "bytes":
                return r.port.wire.receive(b"\xff" * 60)
            if thing == "none":
                return r.port.wire.receive(None)
            bad = Batch(
                np.zeros(10, np.uint8), np.array([5], np.int64), np.array([60], np.uint32), validate=False
            )
            return r.port.wire.receive(bad)

        return which, receive, ("Batch", "frame", "outside")
    if which == "memory":
        size = draw(st.one_of(not_an_int, st.integers(max_value=4095), st.integers(4097, 8191)))
        return which, lambda r: GuestMemory(size, "m"), ("memory size",)
    if which == "alloc":
        size, align = draw(
            st.one_of(
                st.tuples(st.one_of(not_an_int, st.integers(max_value=0)), st.just(128)),
                st.tuples(
                    st.just(64), st.one_of(not_an_int, st.integers(max_value=0), st.sampled_from([3, 6, 100]))
                ),
                st.tuples(st.integers(2 << 20, 2**40), st.just(128)),
            )
        )
        return which, lambda r: r.memory.alloc(size, align), ("allocation", "memory", "size", "align")
    if which == "view":
        gpa, size = draw(
            st.one_of(
                st.tuples(st.integers(max_value=-1), st.integers(0, 10)),
                st.tuples(st.integers((1 << 20) - 3, 2**40), st.integers(4, 100)),
                st.tuples(not_an_int, st.just(4)),
                st.tuples(st.just(0), st.one_of(not_an_int, st.integers(max_value=-1))),
            )
        )
        return which, lambda r: r.memory.view(gpa, size), ("outside", "RAM", "address", "size", "gpa")
    if which == "map":
        iova, offset, size, buf = draw(
            st.one_of(
                st.tuples(st.integers(1, 4095), st.just(0), st.just(4096), st.just("mem")),
                st.tuples(st.just(0), st.just(0), st.integers(1, 4095), st.just("mem")),
                st.tuples(st.just(0), st.just(0), st.just(0), st.just("mem")),
                st.tuples(st.just(-4096), st.just(0), st.just(4096), st.just("mem")),
                st.tuples(st.just(1 << 36), st.just(0), st.just(4096), st.just("mem")),
                st.tuples(st.just(0), st.just(1 << 20), st.just(4096), st.just("mem")),
                st.tuples(st.just(0), st.just(100), st.just(4096), st.just("mem")),
                st.tuples(st.just(0), st.just(0), st.just(4096), st.sampled_from(["int16", "list", "2d"])),
                st.tuples(not_an_int, st.just(0), st.just(4096), st.just("mem")),
                st.tuples(st.just(0), st.just(0), not_an_int, st.just("mem")),
                st.tuples(st.just(0x1000), st.just(0), st.just(4096), st.just("overlap")),
            )
        )

        def do_map(r: Rig) -> object:
            buffer = {
                "int16": np.zeros(4096, np.int16),
                "list": [0] * 4096,
                "2d": np.zeros((2, 4096), np.uint8),
            }.get(buf, r.memory.buffer)
            if buf == "overlap":
                return r.port.vf(0).domain.map(iova, r.memory.buffer, offset, size)  # VF 0 maps all its VM
            return r.domain.map(iova, buffer, offset, size)

        return which, do_map, ("IOVA", "size", "offset", "buffer", "mapping", "overlaps", "multiple")
    if which == "unmap":
        iova, size = draw(
            st.one_of(
                st.tuples(st.integers(1, 4095), st.just(4096)),
                st.tuples(st.just(0), st.integers(max_value=4095)),
                st.tuples(not_an_int, st.just(4096)),
            )
        )
        return which, lambda r: r.domain.unmap(iova, size), ("IOVA", "size", "multiple")
    # host-level calls
    call = draw(st.sampled_from(["add_vm", "add_vm_mem", "add_port", "assign", "assign_pf", "mailbox_log"]))
    calls = {
        "add_vm": lambda r: r.host.add_vm("vm"),
        "add_vm_mem": lambda r: r.host.add_vm("other", memory=1000),
        "add_port": lambda r: r.host.add_port("eth0"),
        "assign": lambda r: r.host.assign(r.port.vf(0), r.vm),
        "assign_pf": lambda r: r.host.assign(r.port.device.pf, r.vm),
        "mailbox_log": lambda r: r.pf.mailbox_log(9),
    }
    return which, calls[call], ("VM", "port", "VF", "assign", "memory", "exists")


@pytest.fixture(scope="module")
def rig() -> Rig:
    return Rig()


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(calls=st.lists(bad_call(), min_size=1, max_size=6))
def test_bad_calls_raise_the_package_error_and_change_nothing(rig: Rig, calls) -> None:
    before = rig.snapshot()
    for name, call, words in calls:
        with pytest.raises(SriovError) as info:
            call(rig)
        msg = str(info.value)
        assert len(msg) > 15, f"{name}: message too short: {msg!r}"
        assert any(w.lower() in msg.lower() for w in words), f"{name}: {msg!r} names none of {words}"
        diffs = same(before, rig.snapshot())
        assert not diffs, f"{name} raised but changed {diffs}: {msg}"


def test_register_access_with_bad_values_is_refused(rig: Rig) -> None:
    """write32(offset, None) and friends: RegisterAccessError, nothing written (was a TypeError)."""
    before = rig.snapshot()
    for fn in (rig.port.vf(0), rig.port.device.pf):
        for value in (None, 1.0, "1", -1, 2**32, True):
            with pytest.raises(SriovError, match="register value"):
                fn.write32(0x1018, value)  # VFRDT(0) / RDH(1): implemented on both
    assert not same(before, rig.snapshot())


def test_batch_offsets_that_wrap_int64_are_refused() -> None:
    data = np.zeros(100, np.uint8)
    with pytest.raises(SriovError, match="frame 0"):
        Batch(data, np.array([2**63 - 5], np.int64), np.array([10], np.uint32))


def test_from_frames_refuses_what_is_not_bytes() -> None:
    with pytest.raises(SriovError, match="frame 1"):
        Batch.from_frames([b"ab", 7])  # bytes(7) would silently be seven zero bytes
    with pytest.raises(SriovError, match="timestamps"):
        Batch.from_frames([b"ab"], ["x"])
