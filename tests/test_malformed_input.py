"""Malformed input to every command: specs, tables, fit files and flags. Each case must end with exit code 2,
exactly one line, which starts with `error:` and names the problem, and never a traceback (issue 14)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()

GOOD_SPEC = '[sweep]\nname = "t"\n[grid]\nn = [1e4]\ntokens = [4096]\n[train]\nbatch_size = 8\nseq_len = 32\n'

# spec text (appended to GOOD_SPEC unless it starts with "!", then the whole file) -> word the error names
SPECS = {
    "lr_inf": ('[lr]\nrule = "fixed"\nvalue = inf\n', "lr.value must be a finite number"),
    "lr_nan": ('[lr]\nrule = "fixed"\nvalue = nan\n', "lr.value must be a number"),
    "lr_value_without_rule": ("[lr]\nvalue = 1e-3\n", "lr.value needs lr.rule"),
    "alpha_inf": ('[lr]\nrule = "power"\nvalue = 1e-3\nalpha = inf\n', "lr.alpha must be a finite number"),
    "unknown_table": ("[gird]\nn = [1]\n", "unknown table [gird]"),
    "unknown_key": ("!" + GOOD_SPEC.replace("tokens", "sizes"), "unknown key grid.sizes"),
    "negative_n": ("!" + GOOD_SPEC.replace("[1e4]", "[-1e4]"), "grid.n must be"),
    "empty_tokens": ("!" + GOOD_SPEC.replace("[4096]", "[]"), "grid.tokens must be"),
    "bad_precision": ('[axes]\nprecision = ["w99"]\n', "axes.precision"),
    "bad_optimizer": ('[axes]\noptimizer = ["sgd"]\n', "axes.optimizer"),
    "repeated_seed": ("[axes]\nseed = [0, 0]\n", "axes.seed must be a list without repeated values"),
    "bad_ptq_format": ('[ptq]\nmethods = ["rtn"]\nformats = ["int99"]\n', "ptq.formats"),
    "fractional_calib": (
        '[ptq]\nmethods = ["rtn"]\nformats = ["int4"]\ncalib_tokens = 1.5\n',
        "whole number",
    ),
    "inf_calib": ('[ptq]\nmethods = ["rtn"]\nformats = ["int4"]\ncalib_tokens = inf\n', "ptq.calib_tokens"),
    "train_weight_decay_inf": ("weight_decay = inf\n", "train.weight_decay must be finite"),
    "train_batch_zero": ("!" + GOOD_SPEC.replace("batch_size = 8", "batch_size = 0"), "batch_size"),
    "train_lr_misplaced": ("lr = 1e-3\n", "train.lr is set in [lr]"),
    "train_wrong_type": ('eval_tokens = "many"\n', "train.eval_tokens must be of type"),
    "missing_name": ("!" + GOOD_SPEC.replace('name = "t"\n', ""), "missing sweep.name"),
    "bad_design": ("!" + GOOD_SPEC.replace('name = "t"', 'name = "t"\ndesign = "random"'), "sweep.design"),
    "not_toml": ("!this is = = not toml", "is not valid TOML"),
}
# train lines must go into the [train] table, which GOOD_SPEC ends with
TRAIN_KEYS = ("train_weight_decay_inf", "train_lr_misplaced", "train_wrong_type")


@pytest.fixture(scope="module")
def d(tmp_path_factory) -> Path:
    """A directory of malformed (and a few good) inputs."""
    root = tmp_path_factory.mktemp("malformed")
    for name, (text, _) in SPECS.items():
        body = text[1:] if text.startswith("!") else GOOD_SPEC + ("" if name in TRAIN_KEYS else "\n") + text
        (root / f"{name}.toml").write_text(body)
    runs = [(n, t, 1.7 + 400 / n**0.34 + 410 / t**0.28) for n in (1e4, 3e4, 1e5) for t in (1e5, 4e5, 2e6)]
    good = pd.DataFrame(runs, columns=["N", "D", "loss"])
    good.to_csv(root / "good.csv", index=False)
    (root / "dup.csv").write_text("N,D,loss,loss\n" + "".join(f"{n},{t},{v},{v}\n" for n, t, v in runs))
    (root / "text.csv").write_text("N,D,loss\n" + "".join(f"{n},{t},abc\n" for n, t, _ in runs))
    (root / "nd.csv").write_text(
        "params,flops,loss\n" + "".join(f"{n},{6 * n * t},{v}\n" for n, t, v in runs)
    )
    (root / "empty.csv").write_text("")
    (root / "garbage.parquet").write_bytes(b"\x00garbage" * 20)
    (root / "trunc.json").write_text('{"format": 2, "law": ')
    (root / "wrong.json").write_text(json.dumps({"hello": 1}))
    (root / "list.json").write_text("[1, 2, 3]")
    (root / "important.parquet").write_bytes(b"")
    good.assign(run_id="r" * 16).to_parquet(root / "foreign.parquet")
    (root / "afile.runs").write_text("x")
    (root / "adir.parquet").mkdir()
    return root


P = "--preset smoke"
FIT = "--n 1e9 --tokens 1e9"
KUMAR = "--law kumar2024 --n 1e9 --tokens 1e9"
# (id, command line ({d}: the fixture directory), what the error line must say)
LINES = [
    # sweep: files and flags
    ("sweep-missing-spec", "sweep {d}/nope.toml --plan", "nope.toml does not exist"),
    ("sweep-preset", "sweep --preset nosuch --plan", "unknown preset 'nosuch'"),
    ("sweep-spec-and-preset", f"sweep {{d}}/lr_inf.toml {P}", "exactly one"),
    ("sweep-executor", f"sweep {P} --executor slurm", "--executor"),
    ("sweep-out-csv", f"sweep {P} --out {{d}}/r.csv", ".parquet file"),
    ("sweep-out-dir", f"sweep {P} --out {{d}}/adir.parquet", "is a directory"),
    ("sweep-out-parent", f"sweep {P} --out {{d}}/no/r.parquet", "does not exist"),
    ("sweep-runs-file", f"sweep {P} --out {{d}}/afile.parquet --resume", "is a file, not a run directory"),
    ("sweep-foreign", f"sweep {P} --out {{d}}/foreign.parquet", "--overwrite"),
    ("sweep-empty-out", f"sweep {P} --out {{d}}/important.parquet", "not a results table"),
    ("sweep-append-overwrite", f"sweep {P} --out {{d}}/x.parquet --append --overwrite", "not both"),
    ("sweep-workers-0", f"sweep {P} --workers 0 --out {{d}}/w.parquet", "--workers must be at least 1"),
    ("sweep-workers-text", f"sweep {P} --workers two", "'--workers'"),
    ("sweep-address", f"sweep {P} --plan --address auto", "--address"),
    # train: flags
    ("train-lr-inf", "train --lr inf", "lr must be a positive finite number"),
    ("train-lr-nan", "train --lr nan", "lr must be a positive finite number"),
    ("train-n-text", "train --n abc", "'--n'"),
    ("train-memory", "train --n 1e12", "needs an estimated"),
    ("train-tokens", "train --tokens -5", "tokens must be positive"),
    ("train-precision", "train --precision w99", "precision"),
    ("train-optimizer", "train --optimizer sgd", "optimizer must be one of"),
    ("train-batch", "train --batch-size 0", "batch_size"),
    ("train-mlp", "train --mlp relu", "mlp must be"),
    ("train-seed", "train --seed -1", "seed must be"),
    ("train-threads", "train --threads 0", "threads must be at least 1"),
    ("train-data", "train --data {d}/nope.txt", "does not exist"),
    ("train-unknown-flag", "train --bogus", "no such option: --bogus"),
    # fit: tables
    ("fit-missing", "fit {d}/nope.csv", "nope.csv"),
    ("fit-duplicate-column", "fit {d}/dup.csv", "column 'loss' appears more than once"),
    ("fit-text-values", "fit {d}/text.csv", "usable rows"),
    ("fit-empty", "fit {d}/empty.csv", "empty.csv"),
    ("fit-not-parquet", "fit {d}/garbage.parquet", "garbage.parquet"),
    ("fit-derive-d", "fit {d}/nd.csv --map N=params --map C=flops", "--derive-d"),
    ("fit-law", "fit {d}/good.csv --law nosuch", "unknown --law 'nosuch'"),
    ("fit-map", "fit {d}/good.csv --map N", "--map expects NAME=VALUE"),
    ("fit-where", "fit {d}/good.csv --where 'N >'", "--where"),
    ("fit-holdout", "fit {d}/good.csv --holdout 2", "--holdout"),
    ("fit-bootstrap", "fit {d}/good.csv --bootstrap -1", "--bootstrap"),
    ("fit-fix", "fit {d}/good.csv --fix alpha=abc", "--fix"),
    ("fit-no-file", "fit", "missing argument 'results'"),
    # predict / recommend: fit files and flags
    ("predict-truncated-fit", f"predict --fit {{d}}/trunc.json {FIT}", "trunc.json is not valid JSON"),
    ("predict-wrong-fit", f"predict --fit {{d}}/wrong.json {FIT}", "not a scalefit fit.json"),
    ("predict-list-fit", f"predict --fit {{d}}/list.json {FIT}", "not a scalefit fit.json"),
    ("predict-csv-as-fit", f"predict --fit {{d}}/good.csv {FIT}", "good.csv"),
    ("predict-missing-fit", f"predict --fit {{d}}/nope.json {FIT}", "nope.json"),
    ("predict-n-zero", "predict --law kumar2024 --n 0 --tokens 1e9", "--n must be positive"),
    ("predict-n-nan", "predict --law kumar2024 --n nan --tokens 1e9", "--n must be positive"),
    ("predict-precision", f"predict {KUMAR} --precision w99", "precision"),
    ("predict-ptq", f"predict {KUMAR} --ptq 40", "2..16 bits"),
    ("recommend-fit", "recommend --fit {d}/trunc.json --flops 1e21", "trunc.json"),
    ("recommend-inf", "recommend --flops inf", "--flops must be a positive finite number"),
    ("recommend-neg", "recommend --flops -1", "--flops must be a positive finite number"),
    ("recommend-text", "recommend --flops abc", "'--flops'"),
    ("recommend-out-of-reach", "recommend --flops 1e21 --max-params 1e3", "no allocation within reach"),
    ("recommend-law", "recommend --flops 1e21 --law nosuch", "nosuch"),
    ("recommend-profile", "recommend --flops 1e21 --profile nosuch", "hardware profile"),
    ("backtest-missing", "backtest {d}/nope.csv", "nope.csv"),
    ("unknown-command", "nosuchcommand", "no such command"),
]
CASES = [
    *(pytest.param(["sweep", f"{{d}}/{k}.toml", "--plan"], w, id=f"spec-{k}") for k, (_, w) in SPECS.items()),
    *(pytest.param(shlex.split(line), w, id=name) for name, line, w in LINES),
]


@pytest.mark.parametrize(("args", "word"), CASES)
def test_malformed_input_is_one_error_line_with_exit_code_2(d: Path, args: list[str], word: str) -> None:
    result = runner.invoke(app, [a.replace("{d}", str(d)) for a in args])
    assert result.exit_code == 2, result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), (
        result.output
    )
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    assert word in lines[0], (word, lines[0])


def test_the_suite_covers_every_command_and_input_kind() -> None:
    assert len(CASES) >= 40
    commands = {p.values[0][0] for p in CASES}
    assert {"sweep", "train", "fit", "predict", "recommend", "backtest"} <= commands


@pytest.mark.parametrize(
    "args",
    [["train", "--lr", "inf"], ["sweep", "--preset", "smoke", "--workers", "x"], ["fit", "/nonexistent.csv"],
     ["recommend", "--flops", "1e21", "--max-params", "1e3"]],
)  # fmt: skip
def test_through_the_console_script_no_traceback(args: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "from cli.main import app; app()", *args], capture_output=True, text=True
    )
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr
