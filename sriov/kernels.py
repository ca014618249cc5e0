"""The one import site of the datapath kernels: compiled, or the golden twins.

``SRIOV_NO_EXTENSIONS=1`` in the environment selects the plain-Python golden
models (as aio-libs' ``*_NO_EXTENSIONS`` does); otherwise the compiled
``sriov._fastpath`` extension is required.
"""

from __future__ import annotations

import os
from types import ModuleType

from sriov import golden


def _select() -> tuple[ModuleType, str]:
    if os.environ.get("SRIOV_NO_EXTENSIONS", "") not in ("", "0"):
        return golden, "golden"
    try:
        from sriov import _fastpath
    except ImportError:  # a checkout nobody built: say that, not "partially initialized module"
        raise ImportError(
            "sriov: the compiled extension is not built: run pip install -e . in the checkout (it "
            "needs a C compiler and takes about a minute), or set SRIOV_NO_EXTENSIONS=1 for the "
            "plain-Python models"
        ) from None
    return _fastpath, "compiled"


impl, IMPLEMENTATION = _select()
compiled: ModuleType | None
try:
    from sriov import _fastpath as compiled
except ImportError:  # pragma: no cover - only without a build
    compiled = None


def set_rx_stores(mode: str) -> None:
    """How the receive kernels write frame bytes, process-wide: ``"stream"`` (default:
    non-temporal stores) or ``"plain"`` (the frames stay in the caches). Every byte, descriptor
    and counter is the same in both; only speed differs (benchmarks/RESULTS.md, "Two ports on
    two cores")."""
    impl.set_rx_stores(mode)
    if compiled is not None and impl is not compiled:
        compiled.set_rx_stores(mode)


def rx_stores() -> str:
    """The receive kernels' store mode (`set_rx_stores`)."""
    return str(impl.rx_stores())


__all__ = ["IMPLEMENTATION", "compiled", "golden", "impl", "rx_stores", "set_rx_stores"]
