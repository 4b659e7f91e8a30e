"""Bits of knowledge a trained model stores about the bioS people, and the capacity ratio R.

Allen-Zhu & Li 2024 ("Physics of Language Models 3.3: Knowledge Capacity Scaling Laws", Definition 4.3 and
Theorem 3.2) lower-bound the information a model holds about N people by

    bits = N · log2(N0 / e^p1) + N · log2(S0 / e^p2)

where p1 is the name loss (nats, summed over the name's tokens, averaged over people) at the start of a
biography, p2 the attribute-value loss (nats, summed over every value's tokens and over the attributes,
averaged over people), N0 the number of possible names and S0 the number of possible value combinations.
log2(x / e^p) = log2 x − p / ln 2 (losses are natural-log). A model that predicts every value perfectly
(p2 = 0) scores N·log2 S0 attribute bits; one that knows the value sets but nothing about the people
(p2 = ln S0) scores 0. Because the N names are distinct, p1 ≥ ln N, so at most N·log2(N0/N) name bits
are available (`World.bits_available`).

R = bits / params. The paper counts the parameters of the transformer plus only those embedding rows (and,
untied, output-head rows) of tokens that occur in the data (`params_paper`); `R_total` divides by every
parameter of the model instead.

`train_bios(run)` trains one model on a bioS/bioD world (scaling.train); `measure_capacity` measures bits
and R of it, and of its weight-quantized copies (scaling.ptq.evaluate_ptq); `sweeps.runner.run_bios` turns
the measurements into result-store rows (docs/design.md).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from scaling.bios import BioItem, BioSource, World, bioD, bioS, bioS_simple
from scaling.errors import UserError

if TYPE_CHECKING:
    from scaling.train import RunResult, TrainConfig

__all__ = [
    "BioLosses",
    "BiosTraining",
    "CapacityResult",
    "bio_losses",
    "knowledge_bits",
    "make_source",
    "measure_capacity",
    "params_paper",
    "train_bios",
]

LN2 = math.log(2.0)
Predictor = Callable[[torch.Tensor], torch.Tensor]  # token ids [B, T] -> logits [B, T, V]


def knowledge_bits(
    p1: float, p2: float, n_people: int, n_names: float, attribute_bits: float
) -> tuple[float, float]:
    """(name bits, attribute bits) = (N·log2(N0/e^p1), N·log2(S0/e^p2)), losses in nats,
    ``attribute_bits`` = log2 S0."""
    return n_people * (math.log2(n_names) - p1 / LN2), n_people * (attribute_bits - p2 / LN2)


@dataclass
class BioLosses:
    """Per-person losses (nats) on the name and on every attribute value; means over people."""

    name: np.ndarray  # [N] summed over the name's tokens
    values: dict[str, np.ndarray]  # attribute -> [N] summed over the value's tokens

    @property
    def p1(self) -> float:
        return float(self.name.mean())

    @property
    def p2_by_attribute(self) -> dict[str, float]:
        return {a: float(v.mean()) for a, v in self.values.items()}

    @property
    def p2(self) -> float:
        return float(sum(self.p2_by_attribute.values()))


def _autocast(model: Predictor) -> contextlib.AbstractContextManager:
    from scaling.model import GPT

    if isinstance(model, GPT):
        from scaling.train import autocast_for

        return autocast_for(model)
    return contextlib.nullcontext()


def bio_losses(model: Predictor, items: Sequence[BioItem], batch_size: int = 64) -> BioLosses:
    """Token losses of ``model`` on each biography, summed over the name and over each value's tokens.

    The loss of token t is −log softmax(logits[t−1])[token t] in fp32 (the model sees the biography from
    its first token, ``<s>``). Biographies of a batch are right-padded; causal attention makes the padding
    irrelevant to the scored positions.
    """
    if not items:
        raise UserError("no biographies to measure")
    attrs = list(items[0].value_pos)
    name = np.zeros(len(items))
    values = {a: np.zeros(len(items)) for a in attrs}
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()  # type: ignore[union-attr]
    max_ctx = getattr(getattr(model, "config", None), "seq_len", None)
    try:
        with torch.no_grad(), _autocast(model):
            for lo in range(0, len(items), batch_size):
                chunk = items[lo : lo + batch_size]
                length = max(len(it.tokens) for it in chunk)
                if max_ctx is not None and length - 1 > max_ctx:
                    raise UserError(f"biographies of {length} tokens exceed the model's context of {max_ctx}")
                ids = torch.zeros((len(chunk), length), dtype=torch.int64)
                for b, it in enumerate(chunk):
                    ids[b, : len(it.tokens)] = torch.tensor(it.tokens)
                logits = model(ids[:, :-1]).float()
                nll = -torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:, None])[..., 0].double()
                for b, it in enumerate(chunk):
                    row = nll[b]
                    name[lo + b] = float(row[[p - 1 for p in it.name_pos]].sum())
                    for a in attrs:
                        values[a][lo + b] = float(row[[p - 1 for p in it.value_pos[a]]].sum())
    finally:
        if was_training:
            model.train()  # type: ignore[union-attr]
    return BioLosses(name, values)


def params_paper(model: torch.nn.Module, used_tokens: np.ndarray | Sequence[int]) -> int:
    """The paper's parameter count: non-embedding parameters plus the embedding (and, if untied, output
    head) rows of the tokens that occur in the training data."""
    d_model = model.wte.weight.shape[1]
    tied = model.lm_head.weight is model.wte.weight
    return int(model.n_params() + len(used_tokens) * d_model * (1 if tied else 2))


@dataclass
class CapacityResult:
    """Knowledge bits of one model on one bioS/bioD world (Allen-Zhu & Li 2024, Definition 4.3)."""

    people: int
    p1: float
    p2: float
    p2_by_attribute: dict[str, float]
    name_bits: float
    attribute_bits: float
    bits: float
    bits_available: float
    params_paper: int
    params_total: int
    R: float
    R_total: float
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_capacity(
    model: torch.nn.Module, source: BioSource, seed: int = 0, batch_size: int = 64
) -> CapacityResult:
    """bits, R and R_total of ``model`` on the training people of ``source`` (their first-exposure
    biographies for training seed ``seed``)."""
    w: World = source.world
    losses = bio_losses(model, source.measurement_items(seed), batch_size)
    name_bits, attr_bits = knowledge_bits(losses.p1, losses.p2, w.n_people, w.n_names, w.attribute_bits)
    bits = name_bits + attr_bits
    pp = params_paper(model, source.used_tokens())
    total = int(model.n_params_total())
    return CapacityResult(
        people=w.n_people,
        p1=losses.p1,
        p2=losses.p2,
        p2_by_attribute=losses.p2_by_attribute,
        name_bits=name_bits,
        attribute_bits=attr_bits,
        bits=bits,
        bits_available=w.bits_available,
        params_paper=pp,
        params_total=total,
        R=bits / pp,
        R_total=bits / total,
    )


# --------------------------------------------------------------------------------------------------------
# One sweep run.

BIOS_OPTIONS = (
    "variant", "junk", "junk_kind", "domain_token", "bioD", "name_tokens", "data_seed", "pieces",
)  # fmt: skip
VARIANTS = ("bioS", "bioS_simple", "bioD")


def make_source(people: int, options: dict[str, Any] | None = None) -> BioSource:
    """The token source a capacity run trains on: ``options`` as in a sweep spec's [bios] table —
    variant ("bioS" | "bioS_simple" | "bioD"), junk (junk tokens per useful token, e.g. 7), junk_kind
    ("random" | "repetitive"), domain_token (a ``<bios>`` token on the useful documents only), bioD = [K,
    C, D, L, T] and name_tokens (bioD only; N = people), data_seed (pools and people; default 0), pieces
    (bioS/bioS_simple: name parts and values as that many BPE pieces; 0, the default, keeps them whole)."""
    opts = dict(options or {})
    unknown = set(opts) - set(BIOS_OPTIONS)
    if unknown:
        raise UserError(f"unknown bios option(s) {sorted(unknown)}; valid: {list(BIOS_OPTIONS)}")
    variant = opts.pop("variant", "bioS")
    seed = int(opts.pop("data_seed", 0))
    kd = opts.pop("bioD", None)
    kw = {k: opts[k] for k in ("junk", "junk_kind") if k in opts}
    kw["domain_token"] = bool(opts.get("domain_token", False))
    pieces = int(opts.pop("pieces", 0))
    if variant != "bioD" and ("bioD" in (options or {}) or "name_tokens" in opts):
        raise UserError(f"bioD and name_tokens apply to variant bioD, not {variant!r}")
    if variant == "bioS":
        return bioS(people, seed=seed, pieces=pieces, **kw)
    if variant == "bioS_simple":
        return bioS_simple(people, seed=seed, pieces=pieces, **kw)
    if pieces:
        raise UserError(f"pieces applies to bioS and bioS_simple, not {variant!r}")
    if variant == "bioD":
        if kd is None or len(kd) != 5:
            raise UserError("variant bioD needs bioD = [K, C, D, L, T]")
        extra = {"name_tokens": opts["name_tokens"]} if "name_tokens" in opts else {}
        return bioD(people, *kd, seed=seed, **extra, **kw)
    raise UserError(f"bios variant must be one of {VARIANTS}, not {variant!r}")


@dataclass
class BiosTraining:
    """A trained knowledge-capacity run: what `train_bios` trained, on what, and for how long."""

    result: RunResult
    source: BioSource
    config: TrainConfig  # the resolved training config (tokens = whole steps covering the exposures)
    people: int
    exposures: int


def train_bios(
    run: dict[str, Any], progress: Callable[[int, int, float], None] | None = None
) -> BiosTraining:
    """Train one model on a bioS/bioD world of ``people`` people for ``exposures`` exposures.

    ``run``: ``people``, ``exposures``, optional ``bios`` (see :func:`make_source`) and any
    ``scaling.train.TrainConfig`` field (``n`` or ``d_model``/``n_layers``, ``precision``, ``optimizer``,
    ``lr``, ``batch_size``, ``seq_len``, ``seed``, ``loss``, ``tie_embeddings`` ...). ``tokens`` is set to
    the whole optimizer steps that cover exactly ``exposures`` epochs of the source. Measuring the trained
    model (:func:`measure_capacity`, before and after PTQ) and building result-store rows is the sweep
    runner's job (``sweeps.runner.run_bios``).
    """
    from scaling.train import TrainConfig, train

    run = dict(run)
    try:
        people, exposures = int(run.pop("people")), int(run.pop("exposures"))
    except KeyError as err:
        raise UserError(f"a bios run needs {err.args[0]!r}") from None
    if people < 1 or exposures < 1:
        raise UserError(f"people and exposures must be positive, got {people} and {exposures}")
    source = make_source(people, run.pop("bios", None) or {})
    run.pop("tokens", None)
    seed = int(run.get("seed", 0))
    run["data"] = f"bios:{source.name}"  # the source is passed to train() directly
    cfg_probe = TrainConfig(**{**run, "tokens": 1.0})
    step_tokens = cfg_probe.batch_size * cfg_probe.seq_len
    # Whole steps covering exactly `exposures` epochs (the last step may start the next epoch by < 1 step).
    tokens = step_tokens * max(1, round(source.tokens_for(exposures, seed) / step_tokens))
    cfg = TrainConfig(**{**run, "tokens": float(tokens)})
    return BiosTraining(train(cfg, source, on_step=progress), source, cfg, people, exposures)
