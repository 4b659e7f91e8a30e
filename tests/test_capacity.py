"""Tests for scaling/capacity.py: the bits formula on hand-built predictors, parameter counts, one run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from scaling.bios import DAYS, MONTHS, N0, S0, YEARS, BioSource, bioS, bioS_simple
from scaling.capacity import (
    bio_losses,
    knowledge_bits,
    make_source,
    measure_capacity,
    params_paper,
    train_bios,
)
from scaling.errors import UserError
from scaling.model import GPT, ModelConfig

NEG = -1e4  # logit of an impossible token (exp underflows to exactly 0 in fp32 softmax)


class TablePredictor(torch.nn.Module):
    """Logits from a rule ``dist(item, position) -> {token: prob}`` for the measured positions.

    Rows of a batch are matched to biographies by their tokens, so the predictor can "know" the person
    (oracle) or deliberately ignore who it is (knowledge-free)."""

    def __init__(self, source: BioSource, dist, n_params: int = 1000) -> None:
        super().__init__()
        self.items = source.measurement_items(0)
        self.vocab = source.vocab_size
        self.dist = dist
        self.scored = [set(it.name_pos) | {p for v in it.value_pos.values() for p in v} for it in self.items]
        self._n = n_params

    def n_params_total(self) -> int:
        return self._n

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(ids.shape[0], ids.shape[1], self.vocab)
        for b, row in enumerate(ids.tolist()):
            k = next(k for k, it in enumerate(self.items) if it.tokens[:-1] == row[: len(it.tokens) - 1])
            it = self.items[k]
            for pos in self.scored[k]:
                probs = self.dist(k, it, pos)
                out[b, pos - 1] = NEG
                for tok, p in probs.items():
                    out[b, pos - 1, tok] = math.log(p)
        return out


def test_knowledge_bits_hand_computed():
    name_bits, attr_bits = knowledge_bits(math.log(N0), math.log(S0), 10, N0, math.log2(S0))
    assert name_bits == pytest.approx(0.0, abs=1e-9) and attr_bits == pytest.approx(0.0, abs=1e-9)
    name_bits, attr_bits = knowledge_bits(0.0, 0.0, 10, N0, math.log2(S0))
    assert name_bits == pytest.approx(10 * math.log2(N0)) and attr_bits == pytest.approx(10 * math.log2(S0))
    # One nat of loss costs 1/ln 2 = 1.4427 bits per person.
    _, a = knowledge_bits(0.0, 1.0, 3, N0, 20.0)
    assert a == pytest.approx(3 * (20.0 - 1.0 / math.log(2)))


@pytest.fixture(scope="module", params=[0, 384], ids=["words", "pieces"])
def small(request) -> BioSource:
    return bioS(12, seed=0, pieces=request.param)


def test_perfect_predictor_scores_all_bits(small):
    oracle = TablePredictor(small, lambda k, it, pos: {it.tokens[pos]: 1.0})
    losses = bio_losses(oracle, small.measurement_items(0), batch_size=5)
    assert losses.p1 == pytest.approx(0.0, abs=1e-6) and losses.p2 == pytest.approx(0.0, abs=1e-6)
    cap = measure_capacity(oracle_with_counts(oracle), small)
    assert cap.attribute_bits == pytest.approx(12 * math.log2(S0), rel=1e-9)
    assert cap.name_bits == pytest.approx(12 * math.log2(N0), rel=1e-9)


def oracle_with_counts(pred: TablePredictor) -> TablePredictor:
    """Give a table predictor the GPT-like attributes that params_paper reads."""
    pred.wte = torch.nn.Embedding(pred.vocab, 2)
    pred.lm_head = torch.nn.Linear(2, pred.vocab, bias=False)
    pred.lm_head.weight = pred.wte.weight
    pred.n_params = lambda: 1000  # type: ignore[method-assign]
    return pred


def next_token(seqs: list[tuple[int, ...]], prefix: tuple[int, ...]) -> dict[int, float]:
    """Next-token distribution under a uniform choice among ``seqs`` consistent with ``prefix``."""
    nxt = [s[len(prefix)] for s in seqs if s[: len(prefix)] == prefix]
    return {t: nxt.count(t) / len(nxt) for t in set(nxt)}


def words(tokens: list[int], vocab: list[str]) -> list[list[int]]:
    """Split token ids into words: a word ends at a token without the ``@@`` continuation suffix."""
    out: list[list[int]] = [[]]
    for t in tokens:
        out[-1].append(t)
        if not vocab[t].endswith("@@"):
            out.append([])
    return out[:-1]


def knowledge_free(source: BioSource, names_known: bool = False):
    """The best predictor that knows the value sets (and the employer → city map) but no person:
    uniform names (or uniform over the N training names), uniform values, each token predicted from the
    values consistent with the tokens so far (values are multi-token with BPE pieces); the joint of
    employer and work city is uniform over the 263 employers whichever comes first."""
    w = source.world
    pools, tok = w.pools, w.tokenizer
    seqs = lambda pool: [tuple(tok.ids(x)) for x in pool]  # noqa: E731
    parts = [seqs(pools.first), seqs(pools.middle), seqs(pools.last)]
    date = [seqs(MONTHS), seqs(DAYS), [tuple(tok.ids(","))], seqs(YEARS)]
    city, employer = seqs(pools.cities), seqs(pools.employers)
    options = {"birth_city": city, "university": seqs(pools.universities), "major": seqs(pools.majors)}
    hq = np.asarray(pools.hq)
    names = [tuple(w.name_ids(i)) for i in range(w.n_people)]

    def within(span: list[int], tokens: list[int], pos: int, pools_by_word) -> dict[int, float]:
        """Distribution at ``pos`` inside ``span`` whose words come from ``pools_by_word``."""
        offset = span[0]
        for j, word in enumerate(words([tokens[p] for p in span], tok.vocab)):
            if pos < offset + len(word):
                return next_token(pools_by_word[j], tuple(tokens[offset:pos]))
            offset += len(word)
        raise AssertionError(pos)

    def dist(k, it, pos):
        if pos in it.name_pos:
            if names_known:  # uniform over the training names consistent with the name so far
                return next_token(names, tuple(it.tokens[it.name_pos[0] : pos]))
            return within(it.name_pos, it.tokens, pos, parts)
        attr = next(a for a, ps in it.value_pos.items() if pos in ps)
        span = it.value_pos[attr]
        prefix = tuple(it.tokens[span[0] : pos])
        if attr == "birth_date":
            return within(span, it.tokens, pos, date)
        if attr in options:
            return next_token(options[attr], prefix)
        value = lambda a: tuple(it.tokens[p] for p in it.value_pos[a])  # noqa: E731
        employer_first = it.value_pos["employer"][0] < it.value_pos["work_city"][0]
        if attr == "employer":
            if employer_first:
                return next_token(employer, prefix)
            c = city.index(value("work_city"))
            return next_token([employer[e] for e in np.flatnonzero(hq == c)], prefix)
        if employer_first:  # work city: determined by the employer
            return next_token([city[hq[employer.index(value("employer"))]]], prefix)
        return next_token([city[c] for c in hq], prefix)  # work city first: the employers' head offices

    return dist


def test_knowledge_free_predictor_scores_zero_bits(small):
    pred = oracle_with_counts(TablePredictor(small, knowledge_free(small)))
    cap = measure_capacity(pred, small)
    assert cap.p1 == pytest.approx(math.log(N0), rel=1e-6)
    assert cap.p2 == pytest.approx(math.log(S0), rel=1e-6)
    assert abs(cap.bits) < 1e-3 * 12


@pytest.mark.parametrize("pieces", [0, 384])
def test_names_known_predictor_scores_name_bits(pieces):
    src = bioS_simple(30, seed=2, pieces=pieces)
    pred = oracle_with_counts(TablePredictor(src, knowledge_free(src, names_known=True)))
    cap = measure_capacity(pred, src)
    assert cap.p1 == pytest.approx(math.log(30), rel=1e-6)
    assert cap.name_bits == pytest.approx(30 * math.log2(N0 / 30), rel=1e-6)
    assert cap.attribute_bits == pytest.approx(0.0, abs=1e-3)
    assert cap.bits <= cap.bits_available


def test_params_paper_counts_used_rows():
    for tied in (True, False):
        m = GPT(
            ModelConfig(
                vocab_size=500, d_model=16, n_layers=1, n_heads=1, d_ff=64, seq_len=32, tie_embeddings=tied
            )
        )
        used = np.arange(100)
        assert params_paper(m, used) == m.n_params() + 100 * 16 * (1 if tied else 2)
        assert m.n_params_total() == m.n_params() + 500 * 16 * (1 if tied else 2)


def test_make_source_options():
    assert make_source(10).world.variant == "bioS"
    assert make_source(10, {"variant": "bioS_simple", "junk": 0.25}).junk == 0.25
    opts = {"variant": "bioD", "bioD": [2, 1, 4, 2, 5], "name_tokens": 3, "domain_token": True}
    src = make_source(10, opts)
    assert src.world.variant == "bioD" and src.world.n_names == 5**3 and src.domain_token
    with pytest.raises(UserError, match="unknown bios option"):
        make_source(10, {"colour": "red"})
    with pytest.raises(UserError, match="bioD = "):
        make_source(10, {"variant": "bioD"})
    with pytest.raises(UserError, match="variant must be"):
        make_source(10, {"variant": "wiki"})
    with pytest.raises(UserError, match="apply to variant bioD"):
        make_source(10, {"variant": "bioS", "name_tokens": 3})
    assert make_source(10, {"variant": "bioS_simple", "pieces": 384}).vocab_size < 600
    with pytest.raises(UserError, match="pieces applies to bioS"):
        make_source(10, {"variant": "bioD", "bioD": [2, 1, 4, 2, 5], "pieces": 384})
    with pytest.raises(UserError, match="needs 'people'"):
        train_bios({"exposures": 3})


def bios_config(ptq: dict, **bios) -> dict:
    """A planned bios run config as sweeps.plan makes it (tiny model, fp32)."""
    train = {"d_model": 16, "n_layers": 1, "n_heads": 1, "seq_len": 64, "batch_size": 4, "precision": "fp32",
             "tie_embeddings": True, "n_evals": 1, "eval_tokens": 256, "threads": 1, "n": None}  # fmt: skip
    ptq = {"methods": [], "formats": [], "calib_tokens": 1024, **ptq}
    return {"task": "bios", "train": train, "ptq": ptq, "bios": {"people": 16, "exposures": 2, **bios}}


def test_run_bios_rows():
    from sweeps.runner import execute

    rows = execute("t1", bios_config({"methods": ["rtn"], "formats": ["int8", "int4"]}))
    assert [r["ptq_method"] for r in rows] == ["none", "rtn", "rtn"]
    assert [r["fmt_post"] for r in rows] == ["", "int8", "int4"]
    base = rows[0]
    assert base["task"] == "bios" and base["people"] == 16 and base["exposures"] == 2
    assert base["status"] == "ok" and 1.9 < base["epochs"] < 2.1
    assert base["delta_ptq"] == 0 and math.isnan(base["P_post"]) and rows[2]["P_post"] == 4
    assert (base["junk"], base["domain_token"], base["mlp"], base["loss_fn"]) == (0.0, 0, "gelu", "ce")
    assert base["shape"] == "d16-L1"
    for r in rows:
        assert math.isfinite(r["bits"]) and r["R"] == pytest.approx(r["bits"] / r["params_paper"])
        assert r["R_total"] == pytest.approx(r["bits"] / r["N_total"])
        assert r["bits_available"] == pytest.approx(16 * (math.log2(N0 / 16) + math.log2(S0)))
        assert json.loads(r["diagnostics_json"])["capacity"]["people"] == 16
        assert json.loads(r["config_json"])["bios"]["exposures"] == 2
