"""Tests for scaling/bios.py: pools and cardinalities, determinism, rendering, exact exposures, junk, bioD."""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np
import pytest
import torch

from scaling.bios import (
    ATTRIBUTES,
    CARDINALITY,
    DAYS,
    MONTHS,
    N0,
    S0,
    YEARS,
    BioTokenizer,
    bioD,
    bioS,
    bioS_simple,
    make_pools,
    templates,
    train_pieces,
)
from scaling.data import TokenSource
from scaling.errors import UserError


@pytest.fixture(scope="module")
def multi():
    return bioS(300, seed=0)


def test_pool_cardinalities():
    p = make_pools(0)
    sizes = {
        "first": 400, "middle": 400, "last": 1000, "cities": 200, "universities": 300, "majors": 100,
        "employers": 263,
    }  # fmt: skip
    for name, size in sizes.items():
        pool = getattr(p, name)
        assert len(pool) == size and len(set(pool)) == size, name
    assert len(p.hq) == 263 and all(0 <= c < 200 for c in p.hq)
    assert N0 == 160_000_000
    assert CARDINALITY["birth_date"] == 12 * 28 * 200
    assert S0 == 12 * 28 * 200 * 200 * 300 * 100 * 263
    assert make_pools(0).checksum() == p.checksum() != make_pools(1).checksum()


def test_templates():
    for a in ATTRIBUTES:
        ts = templates(a)
        assert len(ts) == len(set(ts)) == 50
        for t in ts:
            assert t.count("{s}") == 1 and t.count("{v}") == 1 and t.index("{s}") < t.index("{v}")


def test_people_unique_and_in_range(multi):
    w = multi.world
    names = {w.name(i) for i in range(w.n_people)}
    assert len(names) == w.n_people
    assert w.month.max() < 12 and w.day.max() < 28 and w.year.max() < 200
    assert w.birth_city.max() < 200 and w.university.max() < 300 and w.major.max() < 100
    assert w.employer.max() < 263
    assert np.array_equal(w.work_city, np.asarray(w.pools.hq)[w.employer])
    # Uniform draws: every month occurs among 300 people (p(miss) < 1e-9).
    assert len(set(w.month.tolist())) == 12


def test_rendering_positions(multi):
    w, tok = multi.world, multi.world.tokenizer
    for i in range(20):
        it = multi.measurement_items(0)[i]
        assert it.tokens[0] == tok.index["<s>"]
        assert tok.decode([it.tokens[p] for p in it.name_pos]) == w.name(i)
        assert set(it.value_pos) == set(ATTRIBUTES)
        for a, pos in it.value_pos.items():
            assert [it.tokens[p] for p in pos] == w.values(i)[a]
            assert min(pos) > max(it.name_pos)  # the name is known when a value is scored
        date = tok.decode([it.tokens[p] for p in it.value_pos["birth_date"]])
        assert re.fullmatch(rf"({'|'.join(MONTHS)}) \d+, \d{{4}}", date)
        text = tok.decode(it.tokens)
        assert text.count(w.name(i)) == 1
        assert text.count(".") == 6  # six sentences
        pronoun = "She" if w.female[i] else "He"
        assert pronoun in text.split() or pronoun.lower() in text.split()


def test_determinism_and_variants():
    a, b = bioS(100, seed=3), bioS(100, seed=3)
    assert np.array_equal(a.epoch_tokens(0, 5), b.epoch_tokens(0, 5))
    assert torch.equal(a.train_batch(2, 4, 32, 5), b.train_batch(2, 4, 32, 5))
    assert not np.array_equal(a.epoch_tokens(0, 5), a.epoch_tokens(1, 5))  # re-drawn per exposure
    c = bioS(100, seed=4)
    assert [c.world.name(i) for i in range(5)] != [a.world.name(i) for i in range(5)]
    s = bioS_simple(100, seed=3)
    assert [s.world.name(i) for i in range(100)] == [a.world.name(i) for i in range(100)]  # same people
    e0 = s.measurement_items(0)
    e1 = s._render_epoch(1, 0)[1]
    assert all(x.tokens == y.tokens for x, y in zip(e0, e1, strict=True))  # one fixed biography each


def test_exact_exposures_and_batches():
    src = bioS(40, seed=1)
    assert isinstance(src, TokenSource)
    exposures, seed = 3, 2
    total = src.tokens_for(exposures, seed)
    stream = src.stream(0, total, seed).tolist()
    bos = src.world.tokenizer.index["<s>"]
    assert stream.count(bos) == 40 * exposures
    triples = Counter(zip(stream, stream[1:], stream[2:], strict=False))
    seen = {i: triples[tuple(src.world.name_ids(i))] for i in range(40)}
    assert len(seen) == 40 and set(seen.values()) == {exposures}
    # Rows overlap by one token and consecutive steps continue the stream.
    b0, b1 = src.train_batch(0, 3, 16, seed), src.train_batch(1, 3, 16, seed)
    assert b0.shape == (3, 17) and b0.dtype == torch.int64
    flat = torch.cat([b0[:, :-1].reshape(-1), b1[:, :-1].reshape(-1)])
    assert flat.tolist() == stream[: 6 * 16]
    assert all(b0[k, -1] == b0[k + 1, 0] for k in range(2))
    val = src.val_batches(2, 16, 64)
    assert sum(v.shape[0] for v in val) == 4 and torch.equal(val[0], src.val_batches(2, 16, 64)[0])


def test_junk_and_domain_token():
    clean = bioS(100, seed=0, domain_token=True)
    tok = clean.world.tokenizer
    bos, dom = tok.index["<s>"], tok.index["<bios>"]
    stream = clean.epoch_tokens(0, 0)
    assert (stream == bos).sum() == (stream == dom).sum() == 100
    useful = len(clean.epoch_tokens(0, 0))
    for tagged in (False, True):
        for kind in ("random", "repetitive"):
            mixed = bioS(100, seed=0, junk=3.0, junk_kind=kind, domain_token=tagged)
            s = mixed.epoch_tokens(0, 0)
            n_docs = int((s == bos).sum())
            # Junk documents are untagged: <s> then non-special tokens; the domain token marks bios only.
            assert int((s == dom).sum()) == (100 if tagged else 0)
            assert n_docs == 100 + 300
            assert 2.7 < (len(s) - useful) / useful < 3.3  # ~3 junk tokens per useful token
            starts = np.flatnonzero(s == bos)
            assert int(np.sum(s[starts + 1] == dom)) == (100 if tagged else 0)  # only biographies tagged
    with pytest.raises(UserError, match="junk"):
        bioS(10, junk=-1.0)
    with pytest.raises(UserError, match="junk_kind must be"):
        bioS(10, junk=0.1, junk_kind="noise")


def test_bioD():
    src = bioD(50, 3, 2, 8, 4, 10, name_tokens=3, seed=0)
    w = src.world
    assert w.cardinality == {f"attr{j}": 8**2 for j in range(3)}
    assert w.attribute_bits == pytest.approx(3 * 2 * math.log2(8)) and w.n_names == 10**3
    assert w.bits_available == pytest.approx(50 * (math.log2(1000 / 50) + 3 * 2 * 3))
    for j in range(3):
        assert len({tuple(c) for c in w.chunks[j].tolist()}) == 8  # D distinct chunks per attribute
    items = src.measurement_items(0)
    assert len({tuple(it.tokens[p] for p in it.name_pos) for it in items}) == 50  # distinct names
    it = items[0]
    assert all(len(p) == 2 * 4 for p in it.value_pos.values())
    assert len(it.tokens) == src.document_length == 1 + 3 + 3 * 2 * 4  # no attribute markers
    assert src.vocab_size == len(BioTokenizer.SPECIALS) + 10  # the alphabet and the specials only
    # Values are each attribute's chunks: the tokens at a value's positions spell C chunks of its dictionary.
    for i in (0, 7):
        it = src.item(i)
        for j, a in enumerate(w.attributes):
            vals = np.array(it.tokens)[it.value_pos[a]] - len(BioTokenizer.SPECIALS)
            assert np.array_equal(vals.reshape(2, 4), w.chunks[j][w.assign[i, j]])
    # Junk documents are as long as biographies, so a seq_len multiple of the length cuts none.
    junky = bioD(50, 3, 2, 8, 4, 10, name_tokens=3, junk=2.0, domain_token=True)
    ell = junky.document_length
    assert ell == 1 + 1 + 3 + 24
    stream = junky.stream(0, 4 * ell * 30, 0)
    bos = junky.world.tokenizer.index["<s>"]
    assert np.all(stream[::ell] == bos) and np.sum(stream == bos) == 4 * 30
    with pytest.raises(UserError, match="do not fit"):
        bioD(10, 1, 1, 200, 2, 10)
    with pytest.raises(UserError, match="positive"):
        bioD(10, 0, 1, 2, 2, 10)
    with pytest.raises(UserError, match="distinct names"):
        bioD(1000, 1, 1, 2, 1, 4, name_tokens=2)


def test_tokenizer_and_bad_inputs():
    tok = BioTokenizer(["Hello", "world", ".", "New York"])
    ids = tok.encode(["Hello", "New York", "."])
    assert tok.decode(ids) == "Hello New York."
    assert ids[0] == len(BioTokenizer.SPECIALS)
    with pytest.raises(UserError, match="not in the biography vocabulary"):
        tok.encode(["Paris"])
    with pytest.raises(UserError, match="people must be"):
        bioS(0)
    with pytest.raises(UserError, match="variant"):
        from scaling.bios import BioSWorld

        BioSWorld(10, variant="bioX")


def test_bits_available(multi):
    w = multi.world
    assert w.attribute_bits == pytest.approx(math.log2(S0))
    assert w.bits_available == pytest.approx(300 * (math.log2(N0 / 300) + math.log2(S0)))


def test_train_pieces_is_bpe_and_prefix_free():
    words = ["lower", "lowest", "newer", "wider", "low", "low", "new"]
    seg = train_pieces(words, 14)
    assert set(seg) == set(words)
    assert all("".join(p.removesuffix("@@") for p in s) == w for w, s in seg.items())
    assert all(p.endswith("@@") for s in seg.values() for p in s[:-1])  # only the last piece is bare
    assert not any(p.endswith("@@") for p in (s[-1] for s in seg.values()))
    assert len({p for s in seg.values() for p in s}) <= 14
    # 11 characters-with-position to start; merge 1 is the most frequent pair counted with multiplicity,
    # l@@+o@@ (4: lower, lowest, low twice); merge 2 breaks the 3-3 tie of e@@+r and w@@+e@@ by the strings.
    one, two = train_pieces(words, 12), train_pieces(words, 13)
    assert one["low"] == ("lo@@", "w") and one["wider"] == ("w@@", "i@@", "d@@", "e@@", "r")
    assert two["wider"] == ("w@@", "i@@", "d@@", "er") and two["lowest"][0] == "lo@@"
    # Enough merges make every word one piece; none: characters.
    assert all(len(s) == 1 for s in train_pieces(words, 10_000).values())
    assert train_pieces(["ab"], 1) == {"ab": ("a@@", "b")}


def test_pieces_render_the_same_text():
    whole, pieces = bioS(200, seed=3), bioS(200, seed=3, pieces=384)
    tw, tp = whole.world.tokenizer, pieces.world.tokenizer
    assert len(tp) < 600 < 2000 < len(tw)
    same = lambda x, y: x.replace(" ", "") == y.replace(" ", "")  # noqa: E731  (decode's spacing is cosmetic)
    for i in range(200):
        a, b = whole.item(i, None), pieces.item(i, None)
        assert same(tw.decode(a.tokens), tp.decode(b.tokens))
        assert tw.decode([a.tokens[p] for p in a.name_pos]) == tp.decode([b.tokens[p] for p in b.name_pos])
        for attr in ATTRIBUTES:
            va, vb = ([it.tokens[p] for p in it.value_pos[attr]] for it in (a, b))
            assert same(tw.decode(va), tp.decode(vb))
    # Per-attribute values stay prefix-free (no value's pieces start another value's), so the summed
    # value loss needs no end marker; and the vocabulary is the same in every process.
    w = pieces.world
    p = w.pools
    for pool in (p.first, p.middle, p.last, p.cities, p.universities, p.majors, p.employers, DAYS, YEARS):
        seqs = {tuple(tp.ids(x)) for x in pool}
        assert len(seqs) == len(pool)
        assert not any(s[:k] in seqs for s in seqs for k in range(1, len(s)))
    assert pieces.provenance()["pieces"] == 384
    assert pieces.used_tokens().size <= len(tp)
    with pytest.raises(UserError, match="pieces"):
        bioS(10, pieces=8)
