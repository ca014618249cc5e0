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
    from sriov import _fastpath

    return _fastpath, "compiled"


impl, IMPLEMENTATION = _select()
compiled: ModuleType | None
try:
    from sriov import _fastpath as compiled
except ImportError:  # pragma: no cover - only without a build
    compiled = None

__all__ = ["IMPLEMENTATION", "compiled", "golden", "impl"]
