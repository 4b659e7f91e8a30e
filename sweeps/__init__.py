"""sweeps: sweep specs and presets, run planning, executors (local, Ray) and the results store.

Public API::

    import sweeps
    spec = sweeps.load_spec("precision-cpu")        # a preset name or a TOML path
    runs = sweeps.plan(spec)                        # one PlannedRun per (N, D, precision, seed, ...)
    sweeps.run_sweep(runs, sweeps.RunStore("results.parquet"), executor)

None of these import torch (it loads when a run trains).
"""

from sweeps.driver import run_sweep
from sweeps.plan import PlannedRun, plan
from sweeps.spec import SweepSpec, load_spec
from sweeps.store import RunStore

__all__ = ["PlannedRun", "RunStore", "SweepSpec", "load_spec", "plan", "run_sweep"]
