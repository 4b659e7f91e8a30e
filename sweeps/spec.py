"""Sweep specs: a TOML file (or a named preset in sweeps/presets/) parsed into a validated `SweepSpec`.

A spec names the axes of a sweep and how they are crossed:

```toml
[sweep]                      # what this sweep is
name = "smoke"
description = "..."
task = "lm"                  # "lm" (language modelling) or "bios" (knowledge capacity, issue 6)
design = "grid"              # "grid" (n × tokens) or "isoflop" (per budget C, each n with D = C / 6N)
max_epochs = 1               # refuse runs that would read their corpus more often than this (default 1)

[grid]                       # design = "grid"
n = [2e4, 6e4]               # target non-embedding parameters (the shape family picks the shape)
tokens = [1e5, 3e5]          # training tokens D (rounded to whole optimizer steps)
# precision = ["bf16"]       # optional: this grid's own training precisions (else axes.precision)
# seed = [0, 1]              # optional: this grid's own seeds (else axes.seed)
# A grid may also be several blocks, [[grid]] ... [[grid]], each with its own n, tokens (and precision);
# the sweep is their union, so non-rectangular designs (e.g. many precisions only at small N) fit one spec.

[isoflop]                    # design = "isoflop"
budgets = [1e12, 3e12]       # training FLOPs C
n = [2e4, 6e4, 2e5]          # candidate sizes; D = C / (6N) with N the shape's actual parameter count
min_tokens = 0               # drop (C, n) pairs that would train on fewer tokens (optional)
max_tokens = inf             # ... or more tokens (optional)

[axes]                       # crossed with the design's runs
precision = ["bf16", "w4a4kv4"]   # training precision specs (scaling.formats.PrecisionSpec)
optimizer = ["adamw"]
seed = [0]
lr_mult = [1.0]              # multiplies the learning rate given by [lr]
people = [1000]              # task = "bios" only: people in the bioS corpus
exposures = [100]            # task = "bios" only: times each biography is seen
junk = [0, 7]                # task = "bios" only: junk tokens per useful token (untagged junk documents)
domain_token = [false, true] # task = "bios" only: a <bios> token on every useful document
mlp = ["gelu", "swiglu"]     # MLP type (sets train.mlp)
shape = ["L2-hd16"]          # shape family: layers and head width; n picks d_model (sweeps.shapes)

[lr]                         # the learning-rate rule
rule = "default"             # "default": scaling.train.default_lr(N); "fixed": value;
value = 3e-3                 # "power": value · (n / n_ref)^(−alpha), n the target size;
n_ref = 1e6                  # "width": value · (d_ref / d_model)^alpha, the resolved shape's width
alpha = 0.25                 # (Adam's rate ∝ 1/width, Yang et al. 2022 "Tensor Programs V"; alpha
                             # defaults to 1 for "width", 0.25 for "power")

[train]                      # any other scaling.train.TrainConfig field, fixed for every run
batch_size = 16
seq_len = 128

[ptq]                        # post-training weight quantization evaluated after every run
methods = ["rtn", "gptq"]
formats = ["int4", "int8"]   # scaling.formats.parse_format names
calib_tokens = 16384         # calibration tokens from the training split (GPTQ)
eval_tokens = 8192           # optional: score the quantized copies on fewer validation tokens than the
                             # run's own pass, δ_PTQ paired on them (scaling.ptq.evaluate_ptq)

[schedule]                   # the learning-rate schedule (scaling/schedule.py)
kind = "wsd"                 # "cosine" (default: warmup, cosine to train.min_lr_frac) or "wsd"
cooldown = 0.2               # wsd: fraction of each run's D spent in the final decay
shape = "1-sqrt"             # wsd: cooldown shape, "1-sqrt" or "linear"
warmup_tokens = 5e4          # wsd: fixed warmup (default: train.warmup_frac of the trunk's shortest D)
branches = true              # wsd: the D's of one (n, precision, seed, ...) are cooldown branches of one
                             # run (default; sweeps/trunks.py), each its own result; false: separate runs

[bios]                       # task = "bios" only: scaling.capacity.make_source options
variant = "bioS"             # (variant, junk, junk_kind, domain_token, bioD, name_tokens, data_seed, pieces)
```

Every table and key is checked: unknown names and invalid values raise `UserError` naming the key.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scaling.errors import UserError

PRESETS_DIR = Path(__file__).resolve().parent / "presets"
TASKS = ("lm", "bios")
DESIGNS = ("grid", "isoflop")
LR_RULES = ("default", "fixed", "power", "width")
PTQ_METHODS = ("rtn", "gptq")

# The keys each table accepts (anything else is rejected by name).
TABLES: dict[str, tuple[str, ...]] = {
    "sweep": ("name", "description", "task", "design", "max_epochs"),
    "grid": ("n", "tokens", "precision", "seed"),
    "isoflop": ("budgets", "n", "min_tokens", "max_tokens"),
    "axes": (
        "precision", "optimizer", "seed", "lr_mult", "people", "exposures", "junk", "domain_token", "mlp",
        "shape",
    ),
    "lr": ("rule", "value", "n_ref", "alpha", "d_ref"),
    "train": (),  # validated against scaling.train.TrainConfig's fields
    "ptq": ("methods", "formats", "calib_tokens", "eval_tokens"),
    "schedule": ("kind", "cooldown", "shape", "warmup_tokens", "branches"),
    "bios": (),  # validated against scaling.capacity.BIOS_OPTIONS
}
# TrainConfig fields a spec sets through other tables (or that are execution details, not run config).
AXIS_FIELDS = ("n", "tokens", "precision", "optimizer", "seed", "lr", "threads")
SCHEDULE_FIELDS = ("schedule", "cooldown_frac", "cooldown_shape", "warmup_tokens")  # set in [schedule]


@dataclass(frozen=True)
class GridBlock:
    """Part of a grid design: every n × every tokens value × (its own precisions, else axes.precision)
    × (its own seeds, else axes.seed)."""

    n: tuple[float, ...]
    tokens: tuple[float, ...] = ()  # empty for task "bios" (people × exposures decide D)
    precision: tuple[str, ...] | None = None
    seed: tuple[int, ...] | None = None


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep spec (see the module docstring for the TOML layout)."""

    name: str
    description: str = ""
    task: str = "lm"
    design: str = "grid"
    grid: tuple[GridBlock, ...] = ()  # grid design
    n: tuple[float, ...] = ()  # isoflop design: candidate sizes
    budgets: tuple[float, ...] = ()  # isoflop design: FLOP budgets
    min_tokens: float = 0.0
    max_tokens: float = math.inf
    precision: tuple[str, ...] = ("bf16",)
    optimizer: tuple[str, ...] = ("adamw",)
    seed: tuple[int, ...] = (0,)
    lr_mult: tuple[float, ...] = (1.0,)
    people: tuple[int, ...] = ()
    exposures: tuple[int, ...] = ()
    junk: tuple[float, ...] = ()  # bios: junk tokens per useful token (empty: [bios] decides)
    domain_token: tuple[bool, ...] = ()  # bios (empty: [bios] decides)
    mlp: tuple[str, ...] = ()  # empty: train.mlp
    shape: tuple[str, ...] = ()  # shape-family labels (sweeps.shapes); empty: the default family
    lr_rule: str = "default"
    lr_value: float | None = None
    lr_n_ref: float = 1e6
    lr_alpha: float = 0.25
    lr_d_ref: float = 64.0  # rule "width": the d_model that gets lr value
    train: dict[str, Any] = field(default_factory=dict)
    ptq_methods: tuple[str, ...] = ()
    ptq_formats: tuple[str, ...] = ()
    calib_tokens: int = 16384
    ptq_eval_tokens: int | None = None  # None: PTQ copies scored on the run's own validation batches
    bios: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    schedule: str = "cosine"  # "cosine" | "wsd" (its options are in `train`)
    branches: bool = True  # wsd: every D of a trunk as a cooldown branch of one run (sweeps/trunks.py)
    max_epochs: float = 1.0  # refuse lm runs that would read their corpus more often (sweeps.plan)

    def lr_for(self, n: float, mult: float, d_model: int | None = None) -> float | None:
        """The peak learning rate for target size n (and, for rule "width", the resolved d_model) under this
        spec's rule (None: the trainer's default)."""
        if self.lr_rule == "default":
            return None if mult == 1.0 else _default_lr_scaled(n, mult)
        assert self.lr_value is not None
        if self.lr_rule == "fixed":
            return self.lr_value * mult
        if self.lr_rule == "width":
            assert d_model is not None
            return self.lr_value * (self.lr_d_ref / d_model) ** self.lr_alpha * mult
        return self.lr_value * (n / self.lr_n_ref) ** (-self.lr_alpha) * mult


def _default_lr_scaled(n: float, mult: float) -> float:
    from scaling.train import default_lr

    return default_lr(n) * mult


def preset_names() -> list[str]:
    """Names of the presets shipped in sweeps/presets/."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))


def preset_path(name: str) -> Path:
    """The TOML file of preset `name`."""
    path = PRESETS_DIR / f"{name}.toml"
    if not path.is_file():
        raise UserError(f"unknown preset {name!r}; available: {', '.join(preset_names())}")
    return path


def load_spec(path_or_preset: str | Path) -> SweepSpec:
    """Load a spec from a TOML path, or a preset by name when no such file exists."""
    path = Path(path_or_preset)
    if not path.exists() and path.suffix != ".toml" and "/" not in str(path_or_preset):
        path = preset_path(str(path_or_preset))
    if not path.is_file():
        raise UserError(f"sweep spec {path} does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path} is not valid TOML: {exc}") from None
    return parse_spec(data, source=str(path))


def parse_spec(data: dict[str, Any], source: str = "<spec>") -> SweepSpec:
    """Validate a parsed TOML document and build the `SweepSpec`; errors name the offending key."""
    where = Path(source).name
    for table, value in data.items():
        if table not in TABLES:
            raise UserError(f"{where}: unknown table [{table}]; valid tables: {', '.join(TABLES)}")
        if table == "grid" and isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for block in value:
                _check_keys(where, "grid", block, TABLES["grid"])
            continue
        if not isinstance(value, dict):
            raise UserError(f"{where}: {table} must be a table ([{table}]), got {type(value).__name__}")
        if table == "bios":
            from scaling.capacity import BIOS_OPTIONS

            allowed: tuple[str, ...] = BIOS_OPTIONS
        else:
            allowed = TABLES[table]
        if table != "train":
            _check_keys(where, table, value, allowed)
    g = _Getter(data, where)
    if "sweep" not in data or "name" not in data["sweep"]:
        raise UserError(f"{where}: missing sweep.name")
    task = g.choice("sweep", "task", TASKS, "lm")
    design = g.choice("sweep", "design", DESIGNS, "grid")
    kw: dict[str, Any] = dict(
        name=g.string("sweep", "name"),
        description=g.string("sweep", "description", ""),
        task=task,
        design=design,
        source=source,
    )
    other = "isoflop" if design == "grid" else "grid"
    if other in data:
        raise UserError(f"{where}: table [{other}] given but sweep.design = {design!r}")
    if design == "grid":
        if "grid" not in data:
            raise UserError(f"{where}: missing table [grid] (or [[grid]] blocks) for sweep.design = 'grid'")
        blocks = data["grid"] if isinstance(data["grid"], list) else [data["grid"]]
        kw["grid"] = tuple(
            _grid_block(block, task, where, i if len(blocks) > 1 else None) for i, block in enumerate(blocks)
        )
    else:
        if task != "lm":
            raise UserError(f"{where}: sweep.design 'isoflop' is only for task 'lm'")
        kw["budgets"] = g.numbers("isoflop", "budgets", required=True)
        kw["n"] = g.numbers("isoflop", "n", required=True)
        kw["min_tokens"] = g.number("isoflop", "min_tokens", 0.0, allow_zero=True)
        kw["max_tokens"] = g.number("isoflop", "max_tokens", math.inf, allow_inf=True)
    kw["precision"] = tuple(_check_precision(p, where) for p in g.strings("axes", "precision", ("bf16",)))
    kw["optimizer"] = g.strings("axes", "optimizer", ("adamw",))
    kw["seed"] = g.ints("axes", "seed", (0,), minimum=0)
    kw["lr_mult"] = g.numbers("axes", "lr_mult", default=(1.0,))
    if task == "bios":
        kw["people"] = g.ints("axes", "people", None, minimum=1, required=True)
        kw["exposures"] = g.ints("axes", "exposures", None, minimum=1, required=True)
        kw["bios"] = dict(data.get("bios", {}))
        axes = data.get("axes", {})
        if "junk" in axes:
            kw["junk"] = g.numbers_or_zero("axes", "junk")
        if "domain_token" in axes:
            kw["domain_token"] = g.bools("axes", "domain_token")
        for key in ("junk", "domain_token"):
            if key in axes and key in kw["bios"]:
                raise UserError(f"{where}: {key} is given both in [axes] and in [bios]; keep one")
    else:
        for key in ("people", "exposures", "junk", "domain_token"):
            if key in data.get("axes", {}):
                raise UserError(f"{where}: axes.{key} is only for task 'bios'")
        if "bios" in data:
            raise UserError(f"{where}: table [bios] is only for task 'bios'")
    kw["lr_rule"] = g.choice("lr", "rule", LR_RULES, "default")
    if kw["lr_rule"] != "default":
        kw["lr_value"] = g.number("lr", "value", required=True)
    elif "value" in data.get("lr", {}):
        raise UserError(f"{where}: lr.value needs lr.rule = 'fixed' or 'power'")
    kw["lr_n_ref"] = g.number("lr", "n_ref", 1e6)
    kw["lr_alpha"] = g.number("lr", "alpha", 1.0 if kw["lr_rule"] == "width" else 0.25, allow_zero=True)
    if kw["lr_rule"] == "width":
        kw["lr_d_ref"] = g.number("lr", "d_ref", 64.0)
    elif "d_ref" in data.get("lr", {}):
        raise UserError(f"{where}: lr.d_ref needs lr.rule = 'width'")
    kw["train"] = _check_train(data.get("train", {}), where)
    kw.update(_check_schedule(data.get("schedule", {}), kw["train"], g, where))
    kw["max_epochs"] = g.number("sweep", "max_epochs", 1.0)
    if "mlp" in data.get("axes", {}):
        kw["mlp"] = g.choices("axes", "mlp", ("gelu", "swiglu"), ())
        if "mlp" in kw["train"]:
            raise UserError(f"{where}: mlp is given both in [axes] and in [train]; keep one")
    if "shape" in data.get("axes", {}):
        from sweeps.shapes import parse_shape

        try:
            kw["shape"] = tuple(parse_shape(x).label for x in g.strings("axes", "shape", ()))
        except UserError as exc:
            raise UserError(f"{where}: axes.shape: {exc}") from None
        fixed = [k for k in ("d_model", "n_layers", "n_heads", "d_ff") if k in kw["train"]]
        if fixed:
            raise UserError(f"{where}: axes.shape sets the model shape; remove train.{fixed[0]}")
    kw["ptq_methods"] = g.choices("ptq", "methods", PTQ_METHODS, ())
    kw["ptq_formats"] = tuple(_check_format(f, where) for f in g.strings("ptq", "formats", ()))
    if bool(kw["ptq_methods"]) != bool(kw["ptq_formats"]):
        raise UserError(f"{where}: give both ptq.methods and ptq.formats (or neither)")
    kw["calib_tokens"] = g.whole("ptq", "calib_tokens", 16384)
    if "eval_tokens" in g.data.get("ptq", {}):
        kw["ptq_eval_tokens"] = g.whole("ptq", "eval_tokens", 0)
    spec = SweepSpec(**kw)
    _check_optimizers(spec, where)
    return spec


def _check_keys(where: str, table: str, value: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for key in value:
        if key not in allowed:
            raise UserError(
                f"{where}: unknown key {table}.{key}; valid keys in [{table}]: {', '.join(allowed)}"
            )


def _grid_block(block: dict[str, Any], task: str, where: str, index: int | None) -> GridBlock:
    """One grid block: n × tokens, optionally with its own training precisions (overriding axes.precision)."""
    name = "grid" if index is None else f"grid[{index}]"
    g = _Getter({name: block}, where)
    n = g.numbers(name, "n", required=True)
    tokens: tuple[float, ...] = ()
    if task == "lm":
        tokens = g.numbers(name, "tokens", required=True)
    elif "tokens" in block:
        raise UserError(f"{where}: {name}.tokens is set by people × exposures for task 'bios'; remove it")
    precision = None
    if "precision" in block:
        precision = tuple(_check_precision(p, where) for p in g.strings(name, "precision", ("bf16",)))
    seed = g.ints(name, "seed", None, minimum=0) if "seed" in block else None
    return GridBlock(n, tokens, precision, seed)


class _Getter:
    """Typed access to `data[table][key]` with errors that name `table.key`."""

    def __init__(self, data: dict[str, Any], where: str) -> None:
        self.data, self.where = data, where

    def _raw(self, table: str, key: str, default: Any, required: bool) -> Any:
        value = self.data.get(table, {}).get(key, _MISSING)
        if value is _MISSING:
            if required:
                raise UserError(f"{self.where}: missing {table}.{key}")
            return default
        return value

    def fail(self, table: str, key: str, what: str, value: Any) -> UserError:
        return UserError(f"{self.where}: {table}.{key} must be {what}, got {value!r}")

    def string(self, table: str, key: str, default: str | None = None) -> str:
        value = self._raw(table, key, default, default is None)
        if not isinstance(value, str):
            raise self.fail(table, key, "a string", value)
        return value

    def choice(self, table: str, key: str, options: tuple[str, ...], default: str) -> str:
        value = self.string(table, key, default)
        if value not in options:
            raise self.fail(table, key, f"one of {', '.join(options)}", value)
        return value

    def strings(self, table: str, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self._raw(table, key, default, False)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise self.fail(table, key, "a list of strings", value)
        if not value and default:
            raise self.fail(table, key, "a non-empty list", value)
        _no_duplicates(self, table, key, value)
        return tuple(value)

    def choices(
        self, table: str, key: str, options: tuple[str, ...], default: tuple[str, ...]
    ) -> tuple[str, ...]:
        values = self.strings(table, key, default)
        for v in values:
            if v not in options:
                raise self.fail(table, key, f"a list of {', '.join(options)}", values)
        return values

    def number(
        self,
        table: str,
        key: str,
        default: float | None = None,
        *,
        required: bool = False,
        allow_zero: bool = False,
        allow_inf: bool = False,
    ) -> float:
        value = self._raw(table, key, default, required)
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise self.fail(table, key, "a number", value)
        if math.isinf(value) and not allow_inf:
            raise self.fail(table, key, "a finite number", value)
        if value < 0 or (value == 0 and not allow_zero):
            raise self.fail(table, key, "positive" if not allow_zero else "non-negative", value)
        return float(value)

    def whole(self, table: str, key: str, default: int) -> int:
        """A positive whole number (an int, or a float without fraction such as 1.6e4)."""
        value = self.number(table, key, default)
        if not value.is_integer():
            raise self.fail(table, key, "a whole number", self._raw(table, key, default, False))
        return int(value)

    def numbers(
        self, table: str, key: str, default: tuple[float, ...] = (), *, required: bool = False
    ) -> tuple[float, ...]:
        value = self._raw(table, key, default, required)
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list | tuple) or not value:
            raise self.fail(table, key, "a non-empty list of positive numbers", value)
        for v in value:
            if isinstance(v, bool) or not isinstance(v, int | float) or not (0 < v < math.inf):
                raise self.fail(table, key, "a non-empty list of positive finite numbers", value)
        _no_duplicates(self, table, key, value)
        return tuple(float(v) for v in value)

    def numbers_or_zero(self, table: str, key: str) -> tuple[float, ...]:
        """A non-empty list of finite numbers ≥ 0 without repeats."""
        value = self._raw(table, key, (), True)
        value = [value] if isinstance(value, int | float) and not isinstance(value, bool) else value
        ok = isinstance(value, list) and value and all(
            isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < math.inf for v in value
        )
        if not ok:
            raise self.fail(table, key, "a non-empty list of numbers ≥ 0", value)
        _no_duplicates(self, table, key, value)
        return tuple(float(v) for v in value)

    def bools(self, table: str, key: str) -> tuple[bool, ...]:
        """A non-empty list of true/false without repeats."""
        value = self._raw(table, key, (), True)
        value = [value] if isinstance(value, bool) else value
        if not isinstance(value, list) or not value or not all(isinstance(v, bool) for v in value):
            raise self.fail(table, key, "a non-empty list of true/false", value)
        _no_duplicates(self, table, key, value)
        return tuple(value)

    def ints(
        self, table: str, key: str, default: tuple[int, ...] | None, *, minimum: int, required: bool = False
    ) -> tuple[int, ...]:
        value = self._raw(table, key, default, required)
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list | tuple) or not value:
            raise self.fail(table, key, f"a non-empty list of integers ≥ {minimum}", value)
        for v in value:
            if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
                raise self.fail(table, key, f"a non-empty list of integers ≥ {minimum}", value)
        _no_duplicates(self, table, key, value)
        return tuple(value)


_MISSING = object()


def _no_duplicates(g: _Getter, table: str, key: str, values: Any) -> None:
    if len(set(values)) != len(values):
        raise g.fail(table, key, "a list without repeated values", list(values))


def _check_precision(text: str, where: str) -> str:
    from scaling.formats import PrecisionSpec

    try:
        return PrecisionSpec.parse(text).name
    except UserError as exc:
        raise UserError(f"{where}: axes.precision: {exc}") from None


def _check_format(text: str, where: str) -> str:
    from scaling.formats import parse_format

    try:
        return parse_format(text).name
    except UserError as exc:
        raise UserError(f"{where}: ptq.formats: {exc}") from None


def train_fields() -> dict[str, dataclasses.Field]:
    """The `TrainConfig` fields a spec's [train] table may set."""
    from scaling.train import TrainConfig

    skip = AXIS_FIELDS + SCHEDULE_FIELDS
    return {f.name: f for f in dataclasses.fields(TrainConfig) if f.name not in skip}


def _check_train(table: dict[str, Any], where: str) -> dict[str, Any]:
    """Check [train] keys against TrainConfig (names and value types) and return a copy."""
    fields = train_fields()
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key in AXIS_FIELDS + SCHEDULE_FIELDS:
            home = {"n": "grid/isoflop", "tokens": "grid", "lr": "lr", "threads": "the --threads option"}
            home |= dict.fromkeys(SCHEDULE_FIELDS, "schedule")
            raise UserError(f"{where}: train.{key} is set in [{home.get(key, 'axes')}], not [train]")
        if key not in fields:
            raise UserError(f"{where}: unknown key train.{key}; valid keys in [train]: {', '.join(fields)}")
        default = fields[key].default
        if isinstance(default, tuple):
            value = tuple(value) if isinstance(value, list) else value
        ok = (
            isinstance(value, type(default))
            and not (isinstance(value, bool) and not isinstance(default, bool))
            if default is not None and default is not dataclasses.MISSING
            else isinstance(value, int | float) and not isinstance(value, bool)
        )
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise UserError(f"{where}: train.{key} must be of type {type(default).__name__}, got {value!r}")
        for v in value if isinstance(value, tuple) else (value,):
            if isinstance(v, float) and not math.isfinite(v):
                raise UserError(f"{where}: train.{key} must be finite, got {value!r}")
        out[key] = value
    from scaling.train import TrainConfig

    try:  # the values themselves (ranges, names) as the trainer checks them, before any run is planned
        TrainConfig(**out)
    except UserError as exc:
        raise UserError(f"{where}: [train] {exc}") from None
    return out


def _check_schedule(table: dict[str, Any], train: dict[str, Any], g: _Getter, where: str) -> dict[str, Any]:
    """[schedule]: kind cosine (the default) or wsd with its cooldown fraction, shape, fixed warmup and
    whether D's of one run are branches of one trunk; the TrainConfig fields go into `train`."""
    from scaling.schedule import COOLDOWN_SHAPES, SCHEDULES

    kind = g.choice("schedule", "kind", SCHEDULES, "cosine")
    if kind == "cosine":
        for key in table:
            if key != "kind":
                raise UserError(f"{where}: schedule.{key} needs schedule.kind = 'wsd'")
        return {"schedule": kind}
    cooldown = g.number("schedule", "cooldown", 0.2)
    if not cooldown < 1:
        raise g.fail("schedule", "cooldown", "a fraction of each run in (0, 1)", cooldown)
    train.update(schedule=kind, cooldown_frac=cooldown)
    train["cooldown_shape"] = g.choice("schedule", "shape", COOLDOWN_SHAPES, "1-sqrt")
    if "warmup_tokens" in table:
        train["warmup_tokens"] = g.number("schedule", "warmup_tokens")
    branches = table.get("branches", True)
    if not isinstance(branches, bool):
        raise g.fail("schedule", "branches", "true or false", branches)
    return {"schedule": kind, "branches": branches}


def _check_optimizers(spec: SweepSpec, where: str) -> None:
    from scaling.train import OPTIMIZERS

    for opt in spec.optimizer:
        if opt not in OPTIMIZERS:
            raise UserError(f"{where}: axes.optimizer must list only {', '.join(OPTIMIZERS)}, got {opt!r}")
