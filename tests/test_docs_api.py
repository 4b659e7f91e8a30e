"""docs/api.md runs: every ```python block, in order, in one namespace, from a directory with examples/."""

from __future__ import annotations

import os
import re
from pathlib import Path

import matplotlib

ROOT = Path(__file__).resolve().parents[1]


def test_api_walkthrough_runs(tmp_path, capsys) -> None:
    matplotlib.use("Agg")
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "api.md").read_text(), flags=re.S)
    assert len(blocks) >= 6
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    namespace: dict = {"__name__": "docs_api"}
    try:
        for i, code in enumerate(blocks):
            exec(compile(code, f"docs/api.md block {i + 1}", "exec"), namespace)
    finally:
        os.chdir(cwd)
        from fits.laws import _BUILDERS

        _BUILDERS.pop("kaplan", None)
    out = capsys.readouterr().out
    assert "runs; N from" in out and "<FitResult chinchilla" in out and "AIC chinchilla" in out
    assert (tmp_path / "fit.json").is_file() and (tmp_path / "recommend.png").stat().st_size > 10_000
    assert (tmp_path / "plots" / "observed_vs_predicted.png").is_file()


def test_the_table_lists_every_public_name() -> None:
    """The package table at the top of docs/api.md is each package's `__all__`, no more, no less."""
    import importlib

    rows = re.findall(r"^\| `(\w+)` \| (.+) \|$", (ROOT / "docs" / "api.md").read_text(), flags=re.M)
    assert {pkg for pkg, _ in rows} == {"fits", "sweeps", "scaling", "service"}
    for pkg, names in rows:
        assert set(re.findall(r"`(\w+)`", names)) == set(importlib.import_module(pkg).__all__), pkg
