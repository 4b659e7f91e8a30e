"""The memory estimate (scaling/memory.py) against real training steps, and the refusals built on it: a run
that cannot fit is refused before anything is allocated, by `train` and by the sweep planner."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from scaling.errors import UserError
from scaling.memory import available_bytes, estimate_training, format_bytes
from scaling.model import ModelConfig
from scaling.train import TrainConfig
from sweeps.driver import check_memory, run_memory
from sweeps.plan import plan
from sweeps.spec import parse_spec

runner = CliRunner()

PEAK = """
import json, sys
import torch
from scaling.losses import token_loss
from scaling.memory import estimate_training
from scaling.model import GPT
from scaling.train import TrainConfig, autocast_for, build_optimizers

def status(key):
    return int(open("/proc/self/status").read().split(key + ":")[1].split()[0]) * 1024

torch.set_num_threads(1)
kw = json.loads(sys.argv[1])
cfg = TrainConfig(tokens=1e6, **kw)
mc = cfg.model_config(256)
small = TrainConfig(n=1e4, tokens=1e6, **{k: v for k, v in kw.items() if k != "n"})
warm = GPT(small.model_config(256))  # first calls: kernels, allocator, the optimizer's lazy imports
token_loss("ce", warm(torch.randint(0, 256, (2, 16))), torch.randint(0, 256, (2, 16))).backward()
for opt in build_optimizers(warm, small, 1e-3):
    opt.step()
del warm
base = status("VmRSS")
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current RSS
model = GPT(mc)
opts = build_optimizers(model, cfg, 1e-3)
x = torch.randint(0, 256, (cfg.batch_size, cfg.seq_len + 1))
for _ in range(2):
    with autocast_for(model):
        logits = model(x[:, :-1])
    loss = token_loss("ce", logits, x[:, 1:])
    loss.backward()
    for opt in opts:
        opt.step()
        opt.zero_grad(set_to_none=True)
    del logits, loss
print(json.dumps({"measured": status("VmHWM") - base, "estimate": estimate_training(mc, cfg.batch_size,
                                                                                      cfg.optimizer).total}))
"""


@pytest.mark.parametrize(
    "kw",
    [
        {"n": 3e6, "batch_size": 8, "seq_len": 256, "precision": "fp32"},  # activations dominate
        {"n": 3e7, "batch_size": 2, "seq_len": 64, "precision": "fp32"},  # weights and AdamW state dominate
        dict(n=2e6, batch_size=8, seq_len=128, precision="w4a8kv8@fp32", mlp="swiglu", optimizer="muon"),
    ],
)
def test_estimate_is_within_a_factor_1_5_of_real_training_steps(kw: dict) -> None:
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux /proc/self/clear_refs to reset the peak resident memory")
    proc = subprocess.run([sys.executable, "-c", PEAK, json.dumps(kw)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    ratio = got["estimate"] / got["measured"]
    assert 1 / 1.5 < ratio < 1.5, (kw, format_bytes(got["estimate"]), format_bytes(got["measured"]))


def test_estimate_counts_each_part() -> None:
    mc = ModelConfig(vocab_size=256, d_model=64, n_layers=2, n_heads=2, d_ff=256, seq_len=32)
    est = estimate_training(mc, batch_size=4)
    P = mc.n_params_total
    assert (est.weights, est.gradients, est.optimizer) == (4 * P, 4 * P, 8 * P)  # fp32 + two AdamW moments
    per_token = 2 * (20 * 64 + 2 * 256 + 2) + 4 * 256 + 2 * 64
    assert est.activations == 4 * 4 * 32 * per_token
    assert estimate_training(mc, batch_size=8).activations == 2 * est.activations


PEAK_AT_EXIT = """
import atexit, resource, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)))
from cli.main import app
app()
"""


def test_train_refuses_a_run_that_cannot_fit_before_allocating(tmp_path: Path) -> None:
    peak = tmp_path / "peak"
    proc = subprocess.run([sys.executable, "-c", PEAK_AT_EXIT, str(peak), "train", "--n", "1e12"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip()
    assert line.count("\n") == 0 and "Traceback" not in line
    assert line.startswith("error: this run (N = 9.98e+11")
    have = format_bytes(available_bytes()[0]).split()[1]  # the unit of the machine's memory, e.g. GiB
    assert "needs an estimated 15.7 TiB of memory" in line and f"{have} available (" in line
    assert int(peak.read_text()) < 2 * 1024**2, "the refused run allocated gigabytes"  # ru_maxrss in KiB


def _n_for(target: float, **train: object) -> float:
    """A target size whose estimated training memory is about `target` bytes (bisection on log n)."""
    lo, hi = 1e4, 1e12
    for _ in range(40):
        mid = (lo * hi) ** 0.5
        cfg = TrainConfig(n=mid, **train)  # type: ignore[arg-type]
        if estimate_training(cfg.model_config(256), cfg.batch_size).total < target:
            lo = mid
        else:
            hi = mid
    return lo


def test_the_sweep_planner_refuses_before_any_run_starts(tmp_path: Path) -> None:
    have = available_bytes()[0]
    huge = _n_for(2.0 * have, batch_size=4, seq_len=64)
    spec = tmp_path / "spec.toml"
    spec.write_text(f'[sweep]\nname = "t"\n[grid]\nn = [1e4, {huge:.6g}]\ntokens = [4096]\n'
                    "[train]\nbatch_size = 4\nseq_len = 64\n")  # fmt: skip
    result = runner.invoke(app, ["sweep", str(spec), "--out", str(tmp_path / "r.parquet")])
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert line.count("\n") == 0 and line.startswith("error: run ") and "needs an estimated" in line
    assert "available (" in line and "drop it from the spec" in line
    assert not (tmp_path / "r.runs").exists()  # nothing started, nothing written

    # two runs that each fit, but not at once: refused for --workers 2, accepted for one worker
    each = _n_for(0.7 * have, batch_size=4, seq_len=64)
    runs = plan(parse_spec({"sweep": {"name": "t"}, "grid": {"n": [each], "tokens": [256.0, 512.0]},
                            "train": {"batch_size": 4, "seq_len": 64}}))  # fmt: skip
    assert all(run_memory(r).total < have for r in runs)
    with pytest.raises(UserError, match=r"the 2 largest runs at once \(--workers 2\) needs an estimated"):
        check_memory(runs, workers=2)
    check_memory(runs, workers=1)
