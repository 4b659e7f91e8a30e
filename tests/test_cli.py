"""The `scalefit` app: help lists every command, --version, one-line errors with exit code 2, `train`."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from cli.main import app
from scaling.version import __version__

runner = CliRunner()


def test_help_lists_every_command_and_version_prints() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("train", "sweep", "fit", "predict", "recommend"):
        assert command in result.output
    assert runner.invoke(app, ["--version"]).output.strip() == f"scalefit {__version__}"


def test_bad_input_is_one_line_with_exit_code_2() -> None:
    """Through the real console script: no traceback, one `error:` line naming the problem."""
    cases = [
        (["train", "--precision", "w99"], "precision"),
        (["train", "--tokens", "-5"], "tokens"),
        (["train", "--data", "/nonexistent/corpus.txt"], "does not exist"),
    ]
    for args, word in cases:
        proc = subprocess.run(
            [sys.executable, "-c", "from cli.main import app; app()", *args], capture_output=True, text=True
        )
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and word in lines[0], proc.stderr
        assert "Traceback" not in proc.stderr


def test_train_prints_a_result(tmp_path) -> None:
    text = tmp_path / "corpus.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 400)
    args = ["train", "--n", "2e4", "--tokens", "2e4", "--precision", "w4a8@fp32", "--data", str(text)]
    result = runner.invoke(app, [*args, "--seq-len", "32", "--batch-size", "8", "--threads", "1", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["status"] == "ok" and out["precision"] == "w4a8@fp32" and out["val_loss"] < 3.0
    assert out["tokens"] == 78 * 8 * 32 and out["n_params"] > 0
