"""NAPI's poll chain and its compiled twins (sriov/_fp_napi.pxi, sriov/golden/napi.py).

A poll whose end is the event the clock would run next anyway runs inline (`SimClock.take`):
the history must be the one of an event per poll, to the nanosecond and the callback, whatever
the stack callback does. And the compiled `RxRingState`/`NapiCore` must give the history of their
plain-Python twins. Both are checked on the full model (host, device, PF and VF drivers) with
several VFs, random traffic, moderation settings, guest costs and a stack that may bring the
interface down, drop its callback or schedule clock events in the middle of a poll cycle.
"""

from __future__ import annotations

import hashlib
import itertools
from contextlib import contextmanager
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sriov import golden, kernels
from sriov import host as host_mod
from sriov.batch import Batch
from sriov.drivers import napi as napi_mod
from sriov.drivers import rings
from sriov.drivers import vf as vf_mod
from sriov.drivers.napi import NapiConfig
from sriov.host import Host
from sriov.hw import device, interrupts


def _on(base: type, cls: type) -> type:
    """``cls`` with its base class (a compiled twin) replaced by ``base``."""
    body = {k: v for k, v in vars(cls).items() if k not in ("__dict__", "__weakref__")}
    return type(cls.__name__, (base,), body)


@contextmanager
def _twins(kind: str):
    """The VF drivers and VF vectors created inside use the compiled ("compiled") or golden twins
    (`NapiCore`, `RxRingState`, `VfFire`, `MsixDeliver`, `QueueVector`, `Inject`)."""
    if kind == "compiled":
        yield
        return
    with (
        mock.patch.object(vf_mod, "Napi", _on(golden.NapiCore, napi_mod.Napi)),
        mock.patch.object(rings, "RxRing", _on(golden.RxRingState, rings.RxRing)),
        mock.patch.object(interrupts, "VfFire", golden.VfFire),
        mock.patch.object(device, "MsixDeliver", golden.MsixDeliver),
        mock.patch.object(interrupts, "QueueVector", golden.QueueVector),
        mock.patch.object(host_mod, "Inject", golden.Inject),
    ):
        yield


def _mac(i: int) -> str:
    return f"02:00:00:00:02:{i:02x}"


def _frames(vf_of: list[int], gaps: list[int], start: int) -> Batch:
    """Frame k to VF ``vf_of[k]`` (carrying k), ``gaps[k]`` ns after the one before."""
    frames = []
    for k, vf in enumerate(vf_of):
        head = bytes.fromhex(_mac(vf).replace(":", "")) + bytes.fromhex("020000000099") + b"\x08\x00"
        frames.append(head + bytes(42) + k.to_bytes(4, "big"))
    ts = start + np.cumsum(np.asarray(gaps, dtype=np.int64))
    return Batch.from_frames(frames, timestamps_ns=ts)


SCENARIO = st.fixed_dictionaries(
    {
        "vfs": st.integers(1, 3),
        "rx_usecs": st.sampled_from([0, 1, 10, 50]),
        "budget": st.sampled_from([1, 4, 16, 64]),
        "overhead": st.sampled_from([0, 300, 1_000]),
        "per_frame": st.sampled_from([0, 50, 400]),
        "chunk_ns": st.sampled_from([0, 0, 20_000]),
        "frames": st.integers(0, 700),
        "gap": st.sampled_from([0, 5, 68, 300, 2_000]),  # mean ns between arrivals
        "seed": st.integers(0, 2**16),
        # (vf, callback number, what): the stack does something at its n-th hand-off
        "disrupt": st.lists(
            st.tuples(
                st.integers(0, 2),
                st.integers(0, 12),
                st.sampled_from(["down", "drop_callback", "schedule", "chain_off", "up"]),
            ),
            max_size=3,
        ),
    }
)


def _history(kind: str, chain: bool, sc: dict) -> list:
    """Everything observable of scenario ``sc`` run on the ``kind`` twins (see `SCENARIO`)."""
    with _twins(kind):
        log = _run(chain, sc)
    g = kernels.impl if kind == "compiled" else golden
    twins = (g.NapiCore, g.VfFire, g.MsixDeliver, g.QueueVector, g.Inject)
    assert log.pop() == twins  # every twin in the run was the one asked for
    return log


def _run(chain: bool, sc: dict) -> list:
    host = Host(seed=0)
    port = host.add_port("eth0")
    port.pf.set_numvfs(sc["vfs"])
    nics = []
    for i in range(sc["vfs"]):
        port.pf.set_vf(i, mac=_mac(i))
        nic = host.assign(port.vf(i), host.add_vm(f"vm{i}", memory=4 << 20))
        nic.up()
        nic.set_coalesce(sc["rx_usecs"])
        nic.napi.configure(
            NapiConfig(budget=sc["budget"], poll_overhead_ns=sc["overhead"], per_frame_ns=sc["per_frame"])
        )
        nic.napi.chain = chain
        nics.append(nic)
    clock = host.clock
    clock.advance(5_000_000)
    log: list = []
    calls = [0] * len(nics)
    plans = {(vf % len(nics), n): what for vf, n, what in sc["disrupt"]}

    def stack(i: int):
        def on_receive(batch: Batch) -> None:
            digest = hashlib.blake2b(digest_size=8)
            for o, n in zip(batch.offsets.tolist(), batch.lengths.tolist(), strict=True):
                digest.update(bytes(batch.data[o : o + n]))
            log.append(("rx", i, clock.now, len(batch), digest.hexdigest()))
            what = plans.get((i, calls[i]))
            calls[i] += 1
            nic = nics[i]
            if what == "down":
                nic.down()
            elif what == "drop_callback":
                nic.on_receive = None  # from now on: the backlog
            elif what == "schedule":
                clock.schedule(sc["overhead"] + 25, lambda: log.append(("event", i, clock.now)))
            elif what == "chain_off":
                nic.napi.chain = False
            elif what == "up":
                clock.schedule(3_000, nic.up)  # down then up again later, if it was down

        return on_receive

    for i, nic in enumerate(nics):
        nic.on_receive = stack(i)
    if sc["frames"]:
        rng = np.random.default_rng(sc["seed"])
        vf_of = rng.integers(0, len(nics), sc["frames"]).tolist()
        gaps = rng.integers(0, 2 * sc["gap"] + 1, sc["frames"]).tolist()
        host.run_traffic(port, _frames(vf_of, gaps, 0), start_ns=clock.now + 1, chunk_ns=sc["chunk_ns"])
    clock.advance(3_000_000)
    for i, nic in enumerate(nics):
        tr = nic.napi.trace
        ring = nic.rx_ring
        log.append(
            (
                "nic",
                i,
                nic.napi.counters,
                nic.interrupts(),
                nic.napi.backlog_frames(),
                nic.napi.scheduled,
                None
                if tr is None
                else (tr.arrival.view().tolist(), tr.handed.view().tolist(), tr.irq.view().tolist()),
                None if ring is None else (ring.frames, ring._ntu, ring._ntc, ring.last_bytes),
            )
        )
    log.append(("clock", clock.now, clock.events_run, clock.pending(), clock.next_event_time()))
    fns = [port.vf(i) for i in range(len(nics))]
    used = {type(n.napi).__mro__[1] for n in nics} | {type(f.msix.vectors[0].send) for f in fns}
    used |= {type(m) for f in fns for m in f.msix.vectors} | {
        type(h) for f in fns for h in f._msix_handlers.values()
    }
    used |= {type(d) for f in fns for d in f._msix_deliver.values()}
    k = kernels.impl
    g = golden
    candidates = dict.fromkeys((g.NapiCore, g.VfFire, g.MsixDeliver, g.QueueVector, g.Inject,
                                k.NapiCore, k.VfFire, k.MsixDeliver, k.QueueVector, k.Inject))  # fmt: skip
    log.append(tuple(t for t in candidates if t in used))
    return log


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SCENARIO)
def test_the_chain_gives_the_history_of_one_event_per_poll(sc: dict) -> None:
    assert _history(kernels.IMPLEMENTATION, True, sc) == _history(kernels.IMPLEMENTATION, False, sc)


@pytest.mark.skipif(
    kernels.compiled is None or kernels.IMPLEMENTATION != "compiled", reason="compiled twins only"
)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SCENARIO)
def test_compiled_napi_and_ring_poll_agree_with_their_golden_twins(sc: dict) -> None:
    assert _history("compiled", True, sc) == _history("golden", True, sc)


class _WatchedClock(golden.SimClock):
    """The plain-Python clock, counting the poll ends run inline."""

    inline = 0

    def take(self, handle) -> bool:
        taken = super().take(handle)
        _WatchedClock.inline += taken
        return taken


@pytest.mark.parametrize("vfs", [1, 2])
def test_the_chain_runs_polls_inline_when_nothing_else_is_due(vfs: int) -> None:
    """300 frames per VF at once: with one VF every poll end after the first runs inline; with
    two, the VFs' poll ends interleave (the next event is the other VF's) and only the tail of
    the busier VF's cycle can; the hand-off times are the same either way."""
    out = {}
    sc = {"vfs": vfs, "rx_usecs": 0, "budget": 64, "overhead": 1_000, "per_frame": 50, "chunk_ns": 20_000,
          "frames": 300 * vfs, "gap": 0, "seed": 0, "disrupt": []}  # fmt: skip
    for chain in (True, False):
        _WatchedClock.inline = 0
        with mock.patch("sriov.host.SimClock", _WatchedClock):
            out[chain] = _history(kernels.IMPLEMENTATION, chain, sc)
        if not chain:
            assert _WatchedClock.inline == 0
        elif vfs == 1:
            assert _WatchedClock.inline == 4
        else:
            assert _WatchedClock.inline < 4
    assert out[True] == out[False]
    rx = [e for e in out[True] if e[0] == "rx" and e[1] == 0]
    if vfs == 1:
        assert [e[3] for e in rx] == [64, 64, 64, 64, 44]
    assert {b[2] - a[2] for a, b in itertools.pairwise(rx[:4])} == {1_000 + 64 * 50}


# -- the receive hook's queue list (written_queues) ----------------------------------------------------
@given(
    st.lists(st.integers(-3, 2**31), max_size=140),
    st.sampled_from(["uint32", "int64", "int32", "uint64", "float64"]),
    st.sampled_from(["plain", "strided", "2d", "list"]),
)
def test_written_queues_twins_agree_and_match_nonzero(values: list[int], dtype: str, shape: str) -> None:
    """Both twins: the nonzero queues of a 1-D contiguous uint32/int64 array of at most 128
    entries, else None (the device then validates the argument the long way)."""
    arr = np.asarray(values, dtype=np.int64).clip(0 if dtype.startswith("u") else None).astype(dtype)
    forms = {"plain": arr, "strided": np.repeat(arr, 2)[::2], "2d": arr.reshape(1, -1), "list": values}
    counts = forms[shape]
    quick = shape == "plain" or (shape == "strided" and len(arr) <= 1)  # contiguous 1-D
    expect = None
    if quick and dtype in ("uint32", "int64") and len(arr) <= 128 and (arr >= 0).all():
        expect = [i for i, v in enumerate(arr.tolist()) if v]
    assert golden.written_queues(counts, 128) == expect
    if kernels.compiled is not None:
        assert kernels.compiled.written_queues(counts, 128) == expect


def test_rx_queue_written_takes_any_integer_array_and_refuses_the_rest() -> None:
    from sriov.errors import ConfigError
    from sriov.hw.clock import SimClock
    from sriov.hw.device import Device82599
    from sriov.hw.iommu import Iommu

    dev = Device82599("eth0", SimClock(), Iommu())
    good = (np.zeros(128, np.uint32), np.zeros(128, np.int16), np.zeros(256, np.int64)[::2], [0] * 128)
    for counts in good:
        dev.rx_queue_written(counts)  # nothing routed: nothing happens, nothing refused
    for bad in (np.zeros(129, np.int64), np.zeros((2, 64), np.int64), np.zeros(128, np.float64)):
        with pytest.raises(ConfigError):
            dev.rx_queue_written(bad)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 2**32 - 1), min_size=4, max_size=4),
    st.integers(0, 2),
    st.booleans(),
    st.booleans(),
)
def test_vf_fire_twins_agree(regs: list[int], v: int, routed: bool, in_flight: bool) -> None:
    """`VfFire` (compiled and golden) on a VF of a real device: the same registers after firing
    (VTEIAC clears the cause, VTEIAM masks), the same message delivered, none twice."""
    from sriov.hw import regs as R
    from sriov.hw.clock import SimClock
    from sriov.hw.device import Device82599
    from sriov.hw.iommu import Iommu

    icr, ims, iac, iam = regs
    words = [R.VTEICR // 4, R.VTEIMS // 4, R.VTEIAC // 4, R.VTEIAM // 4]

    def run(fire_type: type) -> tuple:
        dev = Device82599("eth0", SimClock(), Iommu(), irq_latency_ns=700)
        dev.sriov_enable(1)
        fn = dev.vf(0)
        got: list[tuple[int, int]] = []
        if routed:
            fn.set_msix_handler(v, lambda vec: got.append((vec, dev.clock.now)))
        if in_flight:
            fn._msix_pending.add(v)
        fn.msix.regs[words] = regs
        fire = fire_type(fn.msix.regs, v, fn, *words)
        fire()
        fire()  # a second fire while the first message is in flight sends nothing
        dev.clock.advance(1_000)
        return fn.msix.regs[words].tolist(), got, sorted(fn._msix_pending)

    expect = run(golden.VfFire)
    bit = 1 << v
    assert expect[0][:2] == [icr & ~bit if iac & bit else icr, ims & ~bit if iam & bit else ims]
    assert expect[1] == ([(v, 700)] if routed and not in_flight else [])
    if kernels.compiled is not None:
        assert run(kernels.compiled.VfFire) == expect


def _itr_core(base: type, writes: list[tuple[int, int]]):
    """A NAPI core on ``base`` (compiled or golden `NapiCore`, or `Napi`) with the real adaptive
    rule and memo, on vector 1 of a function that records its register writes in ``writes``."""
    from sriov.drivers import coalesce

    fn = type("Fn", (), {"write32": lambda self, o, v: writes.append((o, v))})()
    nic = type("Nic", (), {"function": fn})()

    class Core(base):  # type: ignore[misc, valid-type]
        _itr_answer = napi_mod.Napi._itr_answer

    n = Core.__new__(Core)
    n.itr_state, n.vector, n.nic, n._itr_memo = coalesce.ItrState(), 1, nic, napi_mod._ITR_MEMO
    return n


def test_adaptive_itr_memo_key_covers_the_whole_state() -> None:
    """`Napi._update_itr` memoises `coalesce.adaptive_itr` by (itr, rx_range, tx_range, bytes,
    packets): every input only while `ItrState` has exactly these fields. Fresh and memoised
    answers are the same states and the same VTEITR writes."""
    import dataclasses

    from sriov.drivers import coalesce
    from sriov.hw import regs as R

    assert [f.name for f in dataclasses.fields(coalesce.ItrState)] == ["itr", "rx_range", "tx_range"]
    loads = [(0, 0), (64 * 511, 511), (1500 * 64, 64), (10, 1), (64 * 511, 511), (200_000, 150)] * 4

    def run(memo: bool) -> list:
        writes: list[tuple[int, int]] = []
        n = _itr_core(napi_mod.Napi, writes)
        out = []
        for nbytes, packets in loads:
            if not memo:
                napi_mod._ITR_MEMO.clear()
            n._cycle_bytes, n._cycle_packets = nbytes, packets
            n._update_itr()
            out.append(n.itr_state)
        return [out, writes]

    fresh = run(False)
    assert fresh == run(True)
    assert fresh[1] and all(o == R.VTEITR(1) for o, _ in fresh[1])


_ITR_LOADS = [
    (0, 0),
    (64 * 511, 511),
    (60 * 64, 64),
    (200_000, 0),  # the same bytes as below, no packets (the rule then keeps its range)
    (1500 * 64, 64),
    (10, 1),
    (200_000, 150),
    (60 * 447, 447),
]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(_ITR_LOADS), max_size=40), st.booleans())
def test_adaptive_itr_updates_agree_with_the_golden_twin(loads: list[tuple[int, int]], clear: bool) -> None:
    """`_update_itr` (compiled: the last two answers by state object and load, then the memo;
    golden: the memo) over any sequence of loads, the memo kept or cleared between updates: the
    same states and the same VTEITR writes."""

    def run(base: type) -> list:
        writes: list[tuple[int, int]] = []
        n = _itr_core(base, writes)
        out = []
        for nbytes, packets in loads:
            if clear:
                napi_mod._ITR_MEMO.clear()
            n._cycle_bytes, n._cycle_packets = nbytes, packets
            n._update_itr()
            out.append(n.itr_state)
            assert (n._cycle_bytes, n._cycle_packets) == (0, 0)
        return [out, writes]

    expect = run(golden.NapiCore)
    if kernels.compiled is not None:
        assert run(kernels.compiled.NapiCore) == expect


def test_adaptive_itr_answers_are_keyed_by_the_whole_load() -> None:
    """The compiled `_update_itr` remembers its last answers by (state object, bytes, packets):
    the same state object again with the same bytes but other packets, or other bytes, gets the
    rule's answer for that load, not the remembered one."""
    from sriov.drivers import coalesce

    def run(base: type) -> list:
        writes: list[tuple[int, int]] = []
        n = _itr_core(base, writes)
        start = coalesce.ItrState(itr=142, rx_range=0, tx_range=0)
        out = []
        for nbytes, packets in [(200_000, 150), (200_000, 0), (200_000, 150), (10, 1), (200_000, 0)] * 2:
            n.itr_state = start  # the same object every time
            n._cycle_bytes, n._cycle_packets = nbytes, packets
            n._update_itr()
            out.append(n.itr_state)
        return [out, writes]

    expect = run(golden.NapiCore)
    assert expect[0][0] != expect[0][1]  # the rule tells these loads apart
    if kernels.compiled is not None:
        assert run(kernels.compiled.NapiCore) == expect


# -- QueueVector: the compiled moderator and its golden twin --------------------------------------------
_QV_OPS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "raise_cause",
                "raise_rx",
                "unmask_raise_rx",
                "arm",
                "arm_tx",
                "mask",
                "unmask",
                "clear_cause",
                "reprogram",
                "reprogram_wdis",
                "set_interval",
                "reset",
                "auto_mask",
                "advance",
                "disarm",
            ]
        ),
        st.integers(0, 5_000),
    ),
    max_size=60,
)


def _qv_history(qv_type: type, ops: list[tuple[str, int]]) -> list:
    from sriov.hw.armed import new_armed_table
    from sriov.hw.clock import SimClock

    clock = SimClock()
    sent: list[int] = []
    table, tx_table = new_armed_table(), new_armed_table()
    m = qv_type(clock, lambda: sent.append(clock.now), table, tx_table)
    out: list = []
    for op, x in ops:
        q = x % 128
        if op == "raise_cause":
            m.raise_cause()
        elif op == "raise_rx":
            m.raise_rx(q)
        elif op == "unmask_raise_rx":  # the NAPI re-enable then a completion: moderation's case
            m.unmask()
            m.raise_rx(q)
        elif op == "arm":
            m.arm(q)
        elif op == "arm_tx":
            m.arm(q, True)
        elif op in ("mask", "unmask", "clear_cause", "reset", "disarm"):
            getattr(m, op)()
        elif op == "reprogram":
            m.reprogram(x, reset_counter=True)
        elif op == "reprogram_wdis":
            m.reprogram(x, reset_counter=False)
        elif op == "set_interval":
            m.set_interval_ns(x)
        elif op == "auto_mask":
            m.auto_mask = bool(x & 1)
        else:
            clock.advance(x)
        timer = None if m._timer is None else m._timer.time
        state = (m.masked, m.pending, m.auto_mask, m.interval_ns, m.last_fire, m.fired, timer)
        out.append(
            (
                op,
                clock.now,
                state,
                list(m.armed),
                list(m.armed_tx),
                table.tolist(),
                tx_table.tolist(),
                list(sent),
            )
        )
    return out


@settings(max_examples=300, deadline=None)
@given(_QV_OPS)
def test_compiled_queue_vector_agrees_with_its_golden_twin(ops: list[tuple[str, int]]) -> None:
    if kernels.compiled is None:
        pytest.skip("no compiled extension")
    assert _qv_history(kernels.compiled.QueueVector, ops) == _qv_history(golden.QueueVector, ops)
    assert kernels.compiled.QueueVector.NEVER == golden.QueueVector.NEVER


def test_queue_vector_refuses_a_negative_interval_in_both_twins() -> None:
    from sriov.errors import ConfigError
    from sriov.hw.armed import new_armed_table
    from sriov.hw.clock import SimClock

    for qv_type in {golden.QueueVector, kernels.impl.QueueVector}:
        m = qv_type(SimClock(), lambda: None, new_armed_table())
        for call in (lambda m=m: m.set_interval_ns(-1), lambda m=m: m.reprogram(-5, True)):
            with pytest.raises(ConfigError):
                call()
        assert m.interval_ns == 0


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.lists(st.tuples(st.booleans(), st.booleans(), st.integers(0, 3_000)), min_size=3, max_size=3),
    st.integers(0, 5_000),
)
def test_vector_writes_twins_agree_and_match_the_register_write(
    ims: int, icr: int, bits: int, vectors: list[tuple[bool, bool, int]], later: int
) -> None:
    """`VectorWrites` (compiled and golden) against a VF's VTEIMS written through `VfFunction.write32`
    on a real device: the same register words, the same vector states, the same interrupts sent
    (a cause latched in VTEICR fires on unmask, subject to the interval)."""
    from sriov.hw import regs as R
    from sriov.hw.clock import SimClock
    from sriov.hw.device import Device82599
    from sriov.hw.iommu import Iommu

    def run(how) -> tuple:
        dev = Device82599("eth0", SimClock(), Iommu(), irq_latency_ns=500)
        dev.sriov_enable(1)
        fn = dev.vf(0)
        sent: list[tuple[int, int]] = []
        for v in range(R.VF_MSIX_VECTORS):
            fn.set_msix_handler(v, lambda vec: sent.append((vec, dev.clock.now)))
        dev.clock.advance(10_000)
        msix = fn.msix
        for v, (masked, pending, interval) in enumerate(vectors):
            m = msix.vectors[v]
            m.set_interval_ns(interval)
            m.masked, m.pending = masked, pending
            m.last_fire = dev.clock.now - 1_000
        msix.regs[R.VTEIMS // 4] = ims
        msix.regs[R.VTEICR // 4] = icr
        if how == "write32":
            fn.write32(R.VTEIMS, bits)
        else:
            how(msix.regs, R.VTEIMS // 4, R.VTEICR // 4, R.VTEITR(0) // 4, R.VTEICR_MASK, msix.vectors)(bits)
        dev.clock.advance(later)
        states = [(m.masked, m.pending, m.fired, m.last_fire) for m in msix.vectors]
        return msix.regs.tolist(), states, sent

    expect = run("write32")
    assert expect[0][R.VTEIMS // 4] == ims | (bits & R.VTEICR_MASK)
    assert run(golden.VectorWrites) == expect
    if kernels.compiled is not None:
        assert run(kernels.compiled.VectorWrites) == expect


def test_vector_writes_refuses_words_or_a_mask_it_cannot_serve() -> None:
    from sriov.errors import ConfigError

    words = np.zeros(8, np.uint32)
    for ims_type in {golden.VectorWrites, kernels.impl.VectorWrites}:
        with pytest.raises(ConfigError):
            ims_type(words, 8, 0, 2, 0x7, [object()] * 3)  # VTEIMS word outside the registers
        with pytest.raises(ConfigError):
            ims_type(words, 0, 1, 2, 0xF, [object()] * 3)  # a bit for a fourth vector
        with pytest.raises(ConfigError):
            ims_type(words, 0, 1, 6, 0x7, [object()] * 3)  # VTEITR(2) would be word 8


class _NicProbe:
    """What a NicState's `_msix` calls: the mailbox path and NAPI, recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def interrupt(self, vector: int) -> None:
        self.calls.append(("napi", vector))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-2, 4), max_size=12), st.integers(0, 2))
def test_nic_state_msix_twins_agree(vectors: list[int], mbx: int) -> None:
    """`NicState._msix` (compiled and golden): the same counts, the mailbox vector to
    ``_msix_other``, every other valid vector to NAPI, anything out of range ignored."""

    def run(base: type) -> tuple:
        class Nic(base):  # type: ignore[misc, valid-type]
            def _msix_other(self, vector: int) -> None:
                self.napi.calls.append(("other", vector))

        nic = Nic()
        nic.napi = _NicProbe()
        nic._irq_counts = [0, 0, 0]
        nic._mbx_vector = mbx
        for v in vectors:
            nic._msix(v)
        return nic._irq_counts, nic.napi.calls

    counts, calls = run(golden.NicState)
    assert counts == [sum(1 for v in vectors if v == k) for k in range(3)]
    assert [v for _, v in calls] == [v for v in vectors if 0 <= v < 3]
    assert all((kind == "other") == (v == mbx) for kind, v in calls)
    if kernels.compiled is not None:
        assert run(kernels.compiled.NicState) == (counts, calls)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 2),
    st.integers(0, 2**32 - 1),
    st.lists(st.tuples(st.booleans(), st.booleans(), st.integers(0, 3_000)), min_size=3, max_size=3),
    st.integers(0, 5_000),
    st.integers(0, 5_000),
)
def test_vector_writes_eitr_twins_agree_and_match_the_register_write(
    v: int, value: int, vectors: list[tuple[bool, bool, int]], before: int, later: int
) -> None:
    """`VectorWrites.eitr` (compiled and golden) against a VTEITR(v) write through
    `VfFunction.write32`: the same stored word (CNT_WDIS not kept), moderator states (interval,
    counter reset unless CNT_WDIS) and interrupts sent."""
    from sriov.hw import regs as R
    from sriov.hw.clock import SimClock
    from sriov.hw.device import Device82599
    from sriov.hw.iommu import Iommu

    def run(how) -> tuple:
        dev = Device82599("eth0", SimClock(), Iommu(), irq_latency_ns=500)
        dev.sriov_enable(1)
        fn = dev.vf(0)
        sent: list[tuple[int, int]] = []
        for k in range(R.VF_MSIX_VECTORS):
            fn.set_msix_handler(k, lambda vec: sent.append((vec, dev.clock.now)))
        msix = fn.msix
        for k, (masked, pending, interval) in enumerate(vectors):
            m = msix.vectors[k]
            m.set_interval_ns(interval)
            m.masked = masked
            if pending:
                m.raise_cause()
        dev.clock.advance(before)
        if how == "write32":
            fn.write32(R.VTEITR(v), value)
        else:
            how(msix.regs, R.VTEIMS // 4, R.VTEICR // 4, R.VTEITR(0) // 4, R.VTEICR_MASK, msix.vectors).eitr(
                v, value
            )
        dev.clock.advance(later)
        states = [(m.masked, m.pending, m.fired, m.last_fire, m.interval_ns) for m in msix.vectors]
        return msix.regs.tolist(), states, sent

    expect = run("write32")
    assert expect[0][R.VTEITR(v) // 4] == value & ~R.EITR_CNT_WDIS
    assert expect[1][v][4] == ((value & R.EITR_ITR_INT_MASK) >> 3) * 2048
    assert run(golden.VectorWrites) == expect
    if kernels.compiled is not None:
        assert run(kernels.compiled.VectorWrites) == expect


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 4),
    st.lists(
        st.tuples(
            st.integers(0, 3),
            st.one_of(  # entries that route (ALLOC_VAL, vectors 0-3), and anything at all
                st.lists(st.sampled_from([0x80, 0x81, 0x82, 0x83, 0x00, 0x7F]), min_size=4, max_size=4).map(
                    lambda e: e[0] | e[1] << 8 | e[2] << 16 | e[3] << 24
                ),
                st.integers(0, 2**32 - 1),
            ),
        ),
        max_size=6,
    ),
    st.lists(st.tuples(st.booleans(), st.integers(0, 3_000)), min_size=3, max_size=3),
    st.lists(st.one_of(st.integers(0, 9), st.integers(0, 127)), max_size=20),
    st.integers(0, 5_000),
)
def test_the_receive_hook_twins_agree(
    vfs: int, ivars: list[tuple[int, int]], vectors: list[tuple[bool, int]], queues: list[int], later: int
) -> None:
    """`raise_rx_queues` with `VfRxRaise` (compiled and golden) on a real device: VTIVAR writes
    of any value (valid routes, invalid ones, vectors that do not exist), vectors masked or not
    with any interval, any PF queues (a VF's pools and the PF's): the same VTEICR words, vector
    states, armed tables, unrouted counts and interrupts sent as the golden twins give."""
    from sriov.hw import regs as R
    from sriov.hw.clock import SimClock
    from sriov.hw.device import Device82599
    from sriov.hw.iommu import Iommu

    def run(impl) -> tuple:
        dev = Device82599("eth0", SimClock(), Iommu(), irq_latency_ns=500)
        dev.sriov_enable(vfs)
        sent: list[tuple[int, int, int]] = []
        for fn in dev.vfs:
            for k in range(R.VF_MSIX_VECTORS):
                fn.set_msix_handler(k, lambda vec, i=fn.index: sent.append((i, vec, dev.clock.now)))
            for x, value in ivars:
                fn.write32(R.VTIVAR(x), value)
            for k, (masked, interval) in enumerate(vectors):
                fn.msix.vectors[k].set_interval_ns(interval)
                fn.msix.vectors[k].masked = masked
        raisers = [
            impl.VfRxRaise(fn.msix.regs, R.VTEICR // 4, fn.msix._rx_route, fn.msix.vectors, fn.msix)
            for fn in dev.vfs
        ]
        pf_raised: list[int] = []
        dev.clock.advance(10_000)
        impl.raise_rx_queues(sorted(set(queues)), 2, raisers, pf_raised.append)
        armed = dev.rx_armed.tolist()
        dev.clock.advance(later)
        state = [
            (
                int(fn.msix.regs[R.VTEICR // 4]),
                fn.msix.unrouted,
                [(m.masked, m.pending, m.fired, m.last_fire, list(m.armed)) for m in fn.msix.vectors],
            )
            for fn in dev.vfs
        ]
        return state, armed, pf_raised, sent

    expect = run(golden)
    assert expect[2] == [q for q in sorted(set(queues)) if q // 2 >= vfs]
    if kernels.compiled is not None:
        assert run(kernels.compiled) == expect


def test_raise_rx_queues_refuses_no_queues_per_pool() -> None:
    from sriov.errors import ConfigError

    for impl in {golden, kernels.impl}:
        with pytest.raises(ConfigError):
            impl.raise_rx_queues([0], 0, [], lambda q: None)
