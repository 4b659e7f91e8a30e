"""Tests for scaling/capacity.py: the bits formula on hand-built predictors, parameter counts, one run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from scaling.bios import N0, S0, BioSource, bioS, bioS_simple
from scaling.capacity import bio_losses, knowledge_bits, make_source, measure_capacity, params_paper, run_bios
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


@pytest.fixture(scope="module")
def small() -> BioSource:
    return bioS(12, seed=0)


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


def knowledge_free(source: BioSource, names_known: bool = False):
    """The best predictor that knows the value sets (and the employer → city map) but no person:
    uniform names (or uniform over the N training names), uniform values; the joint of employer and work
    city is uniform over the 263 employers whichever comes first."""
    w = source.world
    pools = w.pools
    first_ids, middle_ids, last_ids = (w._first_ids.tolist(), w._middle_ids.tolist(), w._last_ids.tolist())
    city_ids, employer_ids = w._city_ids.tolist(), w._employer_ids.tolist()
    hq = np.asarray(pools.hq)
    per_city = np.bincount(hq, minlength=len(city_ids))
    names = [tuple(w.name_ids(i)) for i in range(w.n_people)]
    uniform = lambda ids: {t: 1.0 / len(ids) for t in ids}  # noqa: E731
    options = {
        "birth_city": uniform(city_ids),
        "university": uniform(w._univ_ids.tolist()),
        "major": uniform(w._major_ids.tolist()),
    }
    date = [
        uniform(w._month_ids.tolist()),
        uniform(w._day_ids.tolist()),
        {w._comma: 1.0},
        uniform(w._year_ids.tolist()),
    ]

    def dist(k, it, pos):
        if pos in it.name_pos:
            j = it.name_pos.index(pos)
            if names_known:  # uniform over the training names consistent with the parts so far
                prefix = tuple(it.tokens[it.name_pos[0] : pos])
                nxt = [n[j] for n in names if n[:j] == prefix]
                return {t: nxt.count(t) / len(nxt) for t in set(nxt)}
            return uniform((first_ids, middle_ids, last_ids)[j])
        attr = next(a for a, ps in it.value_pos.items() if pos in ps)
        if attr == "birth_date":
            return date[it.value_pos[attr].index(pos)]
        if attr in options:
            return options[attr]
        employer_first = it.value_pos["employer"][0] < it.value_pos["work_city"][0]
        if attr == "employer":
            if employer_first:
                return uniform(employer_ids)
            city = city_ids.index(it.tokens[it.value_pos["work_city"][0]])
            return uniform([employer_ids[e] for e in np.flatnonzero(hq == city)])
        # work_city
        if employer_first:
            e = employer_ids.index(it.tokens[it.value_pos["employer"][0]])
            return {city_ids[hq[e]]: 1.0}
        return {city_ids[c]: per_city[c] / len(employer_ids) for c in np.flatnonzero(per_city)}

    return dist


def test_knowledge_free_predictor_scores_zero_bits(small):
    pred = oracle_with_counts(TablePredictor(small, knowledge_free(small)))
    cap = measure_capacity(pred, small)
    assert cap.p1 == pytest.approx(math.log(N0), rel=1e-6)
    assert cap.p2 == pytest.approx(math.log(S0), rel=1e-6)
    assert abs(cap.bits) < 1e-3 * 12


def test_names_known_predictor_scores_name_bits():
    src = bioS_simple(30, seed=2)
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
    assert make_source(10, {"variant": "bioS_simple", "junk_ratio": 0.2}).junk_ratio == 0.2
    assert make_source(10, {"variant": "bioD", "bioD": [2, 1, 4, 2, 5]}).world.variant == "bioD"
    with pytest.raises(UserError, match="unknown bios option"):
        make_source(10, {"colour": "red"})
    with pytest.raises(UserError, match="bioD = "):
        make_source(10, {"variant": "bioD"})
    with pytest.raises(UserError, match="variant must be"):
        make_source(10, {"variant": "wiki"})
    with pytest.raises(UserError, match="needs 'people'"):
        run_bios({"exposures": 3})


def test_run_bios_rows():
    run = {
        "people": 16, "exposures": 2, "d_model": 16, "n_layers": 1, "n_heads": 1, "seq_len": 64,
        "batch_size": 4, "precision": "fp32", "tie_embeddings": True, "n_evals": 1, "eval_tokens": 256,
        "run_id": "t1", "threads": 1, "ptq": {"methods": ["rtn"], "formats": ["int8", "int4"]},
    }  # fmt: skip
    rows = run_bios(run)
    assert [r["ptq_method"] for r in rows] == ["none", "rtn", "rtn"]
    assert [r["fmt_post"] for r in rows] == ["", "int8", "int4"]
    base = rows[0]
    assert base["task"] == "bios" and base["people"] == 16 and base["exposures"] == 2
    assert base["status"] == "ok" and 1.9 < base["epochs"] < 2.1
    assert base["delta_ptq"] == 0 and math.isnan(base["P_post"]) and rows[2]["P_post"] == 4
    for r in rows:
        assert math.isfinite(r["bits"]) and r["R"] == pytest.approx(r["bits"] / r["params_paper"])
        assert r["R_total"] == pytest.approx(r["bits"] / r["N_total"])
        assert r["bits_available"] == pytest.approx(16 * (math.log2(N0 / 16) + math.log2(S0)))
        assert json.loads(r["diagnostics_json"])["capacity"]["people"] == 16
        assert json.loads(r["config_json"])["exposures"] == 2
