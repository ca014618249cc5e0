"""Invariant checks users and tests can run on a live model.

Conservation: every frame that entered a port was delivered or dropped for a named, counted
reason, per port and per pool. Each check returns the list of violations (empty when the
invariant holds), so a test can assert on it and a tool can print it.
"""

from __future__ import annotations

from typing import Any

from sriov.wire import rx_conservation_errors


def conservation_errors(device: Any) -> list[str]:
    """Every way the counters of ``device`` (one 82599 port) fail to add up."""
    errors = list(rx_conservation_errors(device))
    try:
        from sriov.wire import tx_conservation_errors  # type: ignore[attr-defined]
    except ImportError:  # the transmit side adds its own identity when it is present
        return errors
    return errors + list(tx_conservation_errors(device))


check_conservation = conservation_errors
