"""Control plane (issue 3): host time of a full 63-VF bring-up, and mailbox round trips per second.

Run: python -m pytest benchmarks/bench_control.py --benchmark-only -q
"""

from __future__ import annotations

import pytest
from timing import best

from sriov.drivers import mailbox as M
from sriov.drivers.mailbox import MboxApi, VfMailbox
from sriov.host import Host

ROUND_TRIPS = 2_000


def _bring_up(num_vfs: int) -> tuple[Host, list]:
    host = Host(seed=1)
    port = host.add_port("eth0")
    port.pf.set_numvfs(num_vfs)
    vm = host.add_vm("vm", memory=(num_vfs * 2 + 4) << 20)  # a 512-descriptor ring + buffers per VF
    nics = [host.assign(port.vf(n), vm) for n in range(num_vfs)]
    for nic in nics:
        nic.up()
    return host, nics


@pytest.mark.parametrize("num_vfs", [1, 8, 63])
def test_bring_up(benchmark, num_vfs: int) -> None:
    """Host, port, SR-IOV enable, assign and open every VF (probe + open over the mailbox)."""
    host, nics = benchmark.pedantic(_bring_up, args=(num_vfs,), rounds=3, iterations=1)
    host.clock.advance(1_000_000_000)
    port = host.ports["eth0"]
    messages = sum(port.pf.vf_counters(n)["requests"] for n in range(num_vfs))
    benchmark.extra_info.update(
        num_vfs=num_vfs,
        all_links_up=all(nic.link_up for nic in nics),
        vf_requests=messages,
        simulated_ms=host.clock.now / 1e6,
        host_ms=best(benchmark) * 1e3,
    )


def _round_trips(mbx: VfMailbox, n: int) -> int:
    acked = 0
    for _ in range(n):
        acked += mbx.transact(M.get_link_state()).acked
    return acked


@pytest.mark.parametrize("num_vfs", [1, 63])
def test_mailbox_round_trips(benchmark, num_vfs: int) -> None:
    """GET_LINK_STATE request + reply (VF write, PF interrupt, message task, reply, VF read)."""
    host = Host(seed=1)
    port = host.add_port("eth0")
    port.pf.set_numvfs(num_vfs)
    fn = port.vf(0)
    mbx = VfMailbox(fn, host.clock)
    mbx.timeout = M.IXGBE_VF_MBX_INIT_TIMEOUT
    fn.write32(0, 0x04000000)  # VFCTRL.RST, then RESET and API 1.2 so GET_LINK_STATE is served
    mbx.write(M.reset_request().words())
    host.clock.advance(10_000_000)
    mbx.read_posted(4)
    assert mbx.transact(M.api_negotiate(MboxApi.API_12)).acked
    acked = benchmark.pedantic(_round_trips, args=(mbx, ROUND_TRIPS), rounds=3, iterations=1)
    assert acked == ROUND_TRIPS
    benchmark.extra_info.update(
        num_vfs=num_vfs,
        round_trips_per_s=ROUND_TRIPS / best(benchmark),
        simulated_us_per_round_trip=M.IXGBE_VF_MBX_INIT_DELAY_NS / 1e3,
    )
