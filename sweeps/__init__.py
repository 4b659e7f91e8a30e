"""sweeps: sweep specs and presets, run planning, executors (local, Ray) and the results store.

Public API::

    import sweeps
    spec = sweeps.load_spec("precision-cpu")        # a preset name or a TOML path
    runs = sweeps.plan(spec)                        # one PlannedRun per (N, D, precision, seed, ...)
    sweeps.run_sweep(runs, sweeps.RunStore("results.parquet"), executor)

Names load on first use, so `import sweeps` stays light (no torch until a run trains).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "load_spec": "sweeps.spec",
    "SweepSpec": "sweeps.spec",
    "plan": "sweeps.plan",
    "PlannedRun": "sweeps.plan",
    "run_sweep": "sweeps.driver",
    "RunStore": "sweeps.store",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'sweeps' has no attribute {name!r}")
