"""Tests for scaling/data.py: the default corpus, user files, determinism and the validation split."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scaling.data import VAL_BOOKS, ArrayTokenSource, TokenSource, load_corpus, unigram_entropy
from scaling.errors import UserError


@pytest.fixture(scope="module")
def corpus() -> ArrayTokenSource:
    return load_corpus("default")


def test_default_corpus_size_and_provenance(corpus):
    assert isinstance(corpus, TokenSource)
    assert corpus.vocab_size == 256
    assert corpus.n_train_tokens > 15_000_000  # enough for 5-20M-token sweeps at about one epoch
    assert 0.02 < corpus.n_val_tokens / (corpus.n_train_tokens + corpus.n_val_tokens) < 0.08
    prov = corpus.provenance()
    assert len(prov["sources"]) == 5
    for s in prov["sources"]:
        assert s["version"] and s["package_license"] == "MIT" and "public domain" in s["text_license"]
        assert len(s["sha256"]) == 64 and s["bytes"] > 3_000_000
    assert sum(s["bytes"] for s in prov["sources"]) == corpus.n_train_tokens + corpus.n_val_tokens
    assert load_corpus() is corpus  # cached per process


def test_validation_books_are_held_out(corpus):
    train = corpus.train.tobytes()
    val = corpus.val.tobytes()
    # Names that occur only in held-out books (Ruth, Esther) must not leak into training text.
    for name in (b"Elimelech", b"Vashti", b"Naomi"):
        assert name in val
        assert name not in train
    assert VAL_BOOKS == (8, 17, 32, 41, 50, 59)


def test_train_batch_deterministic_and_contiguous(corpus):
    a = corpus.train_batch(step=7, batch_size=4, seq_len=32, seed=3)
    b = corpus.train_batch(step=7, batch_size=4, seq_len=32, seed=3)
    c = corpus.train_batch(step=8, batch_size=4, seq_len=32, seed=3)
    d = corpus.train_batch(step=7, batch_size=4, seq_len=32, seed=4)
    assert a.shape == (4, 33) and a.dtype == torch.int64
    assert torch.equal(a, b)
    assert not torch.equal(a, c) and not torch.equal(a, d)
    # Each row is a contiguous slice of the training split.
    row = bytes(a[0].tolist())
    assert row in corpus.train.tobytes()


def test_val_batches_fixed_and_sized(corpus):
    v1 = corpus.val_batches(batch_size=8, seq_len=64, n_tokens=2000)
    v2 = corpus.val_batches(batch_size=8, seq_len=64, n_tokens=2000)
    n_windows = math.ceil(2000 / 64)
    assert sum(x.shape[0] for x in v1) == n_windows
    assert all(x.shape[1] == 65 and x.dtype == torch.int64 for x in v1)
    assert all(torch.equal(x, y) for x, y in zip(v1, v2, strict=True))
    # Windows come from the validation split and spread over all of it (first and last translation).
    first, last = bytes(v1[0][0].tolist()), bytes(v1[-1][-1].tolist())
    assert first in corpus.val.tobytes() and last in corpus.val.tobytes()
    assert first != last


def test_unigram_entropy():
    assert unigram_entropy(np.array([0, 1, 2, 3] * 5), 4) == pytest.approx(math.log(4))
    assert unigram_entropy(np.zeros(10, dtype=np.int64), 3) == 0.0
    p = np.array([0.5, 0.25, 0.25])
    assert unigram_entropy(np.array([0, 0, 1, 2]), 3) == pytest.approx(-(p * np.log(p)).sum())


def test_default_corpus_entropy(corpus):
    h = corpus.unigram_entropy()
    assert 2.5 < h < 3.5  # English bytes: about 3 nats/byte of unigram entropy
    assert abs(corpus.unigram_entropy("val") - h) < 0.1


def test_user_text_file(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes(b"hello world, " * 200)
    src = load_corpus(str(path))
    assert src.vocab_size == 256
    assert src.n_train_tokens + src.n_val_tokens == 2600
    assert src.n_val_tokens == 130  # last 5%
    assert src.provenance()["sources"][0]["sha256"]
    batch = src.train_batch(0, 2, 16, 0)
    assert batch.shape == (2, 17) and int(batch.max()) < 256


def test_user_bin_file_and_directory(tmp_path):
    tokens = np.arange(1000, dtype=np.uint16) % 500
    path = tmp_path / "tokens.bin"
    tokens.tofile(path)
    src = load_corpus(path)
    assert src.vocab_size == 500
    assert load_corpus(path, vocab_size=50304).vocab_size == 50304
    d = tmp_path / "nano"
    d.mkdir()
    tokens.tofile(d / "train.bin")
    tokens[:100].tofile(d / "val.bin")
    src = load_corpus(d)
    assert src.n_train_tokens == 1000 and src.n_val_tokens == 100
    assert torch.equal(src.val_batches(2, 10, 20)[0][0], torch.arange(11))


@pytest.mark.parametrize(
    ("content", "name", "kwargs", "match"),
    [
        (None, "missing.txt", {}, "does not exist"),
        (b"", "empty.txt", {}, "empty"),
        (b"", "empty.bin", {}, "empty"),
        (b"\x00\x01\x02", "odd.bin", {}, "not a whole number of uint16 ids"),
        (b"ab\x00cd" * 10, "data.txt", {}, "looks binary"),
        (b"abc", "tiny.txt", {}, "too few"),
        (b"xx", "weights.pt", {}, "unsupported data file type"),
        (np.array([1, 2, 900], dtype=np.uint16).tobytes() * 4, "t.bin", {"vocab_size": 512}, ">= the stated"),
        (b"some text here", "t.txt", {"vocab_size": 1000}, "read as bytes"),
    ],
)
def test_bad_inputs(tmp_path, content, name, kwargs, match):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError, match=match):
        load_corpus(path, **kwargs)


def test_bad_specs(tmp_path):
    with pytest.raises(UserError, match="must be 'default' or a path"):
        load_corpus(3)  # type: ignore[arg-type]
    with pytest.raises(UserError, match=r"holds no \.bin token shards"):
        load_corpus(tmp_path)
    with pytest.raises(UserError, match="val_fraction"):
        load_corpus("default", val_fraction=1.5)
    src = ArrayTokenSource("x", np.arange(10, dtype=np.uint8), np.arange(5, dtype=np.uint8), 256)
    with pytest.raises(UserError, match="longer than the training split"):
        src.train_batch(0, 1, 10, 0)
    with pytest.raises(UserError, match="longer than the validation split"):
        src.val_batches(1, 5, 10)


@pytest.mark.parametrize("n", [1, 2, 5, 97, 1024, 4099])
def test_feistel_permutation_is_a_bijection(n: int) -> None:
    from scaling.order import feistel_permute

    out = feistel_permute(np.arange(n), n, seed=3, epoch=0)
    assert sorted(out.tolist()) == list(range(n))
    if n > 50:  # a shuffle, not the identity, and another epoch is another order
        assert (out != np.arange(n)).mean() > 0.9
        assert not np.array_equal(out, feistel_permute(np.arange(n), n, seed=3, epoch=1))


def test_one_epoch_predicts_every_training_token_at_most_once() -> None:
    shards = [np.arange(6_000, dtype=np.int64), np.arange(20_000, 24_000, dtype=np.int64)]
    src = ArrayTokenSource("ids", shards, shards[0][:100], vocab_size=65_536)
    seq, batch = 16, 8
    per_epoch = (6_000 - seq) // seq + (4_000 - seq) // seq
    steps = per_epoch // batch
    targets = torch.cat([src.train_batch(s, batch, seq, seed=1)[:, 1:] for s in range(steps)]).flatten()
    assert targets.unique().numel() == targets.numel()  # no token predicted twice within the epoch
    assert targets.numel() >= 0.95 * src.n_train_tokens
    for row in src.train_batch(3, batch, seq, seed=1):  # windows never cross the shard boundary
        assert row[-1] - row[0] == seq
    assert torch.equal(src.train_batch(5, batch, seq, 1), src.train_batch(5, batch, seq, 1))
    nxt = src.train_batch(steps + 1, batch, seq, seed=1)  # the second epoch starts over, shifted
    assert nxt.shape == (batch, seq + 1)


def _llmc_shard(path, ids: np.ndarray, magic: int) -> None:
    header = np.zeros(256, dtype="<i4")
    header[0], header[1], header[2] = magic, 1, len(ids)
    path.write_bytes(header.tobytes() + ids.tobytes())


def test_token_shards_directory_glob_and_identity(tmp_path, monkeypatch):
    from scaling import shards

    d = tmp_path / "fineweb"
    d.mkdir()
    rng = np.random.default_rng(0)
    parts = [rng.integers(0, 70_000, size=n, dtype=np.uint32) for n in (3000, 2000, 4000)]
    for i, ids in enumerate(parts):
        _llmc_shard(d / f"fw_train_{i:06d}.bin", ids, 20240801)  # uint32 ids (LLaMA 3 magic)
    _llmc_shard(d / "fw_val_000000.bin", rng.integers(0, 70_000, size=1500, dtype=np.uint32), 20240801)
    src = load_corpus(d)
    assert src.n_train_tokens == 9000 and src.n_val_tokens == 1500
    assert src.vocab_size == int(max(p.max() for p in parts)) + 1 > 65_536
    assert all(isinstance(a, np.memmap) and a.dtype == np.uint32 for a in src.train)
    batch = src.train_batch(0, 8, 64, seed=0)
    assert batch.shape == (8, 65) and int(batch.max()) < src.vocab_size
    whole = [bytes(a.tobytes()) for a in parts]
    for row in batch:  # each window lies inside one training shard
        assert any(row.numpy().astype(np.uint32).tobytes() in w for w in whole)
    ident = src.identity()
    assert ident["n_train_tokens"] == 9000 and len(ident["checksum"]) == 64
    assert src.provenance()["shards"]["val"] == ["fw_val_000000.bin"]

    train_only = load_corpus(str(d / "fw_train_*.bin"))  # a glob: the last shard is held out
    assert train_only.n_train_tokens == 5000 and train_only.n_val_tokens == 4000
    assert "last shard" in train_only.provenance()["val_split"]

    _llmc_shard(d / "fw_train_000001.bin", parts[1][::-1].copy(), 20240801)  # re-tokenized shard
    from scaling.data import _load_cached

    _load_cached.cache_clear()
    assert load_corpus(d).identity()["checksum"] != ident["checksum"]

    raw = tmp_path / "raw"
    raw.mkdir()
    np.arange(5000, dtype=np.uint32).tofile(raw / "train.bin")
    (raw / "meta.json").write_text('{"dtype": "uint32", "vocab_size": 6000, "tokenizer": "test"}')
    assert load_corpus(raw).vocab_size == 6000 and load_corpus(raw).provenance()["tokenizer"] == "test"
    monkeypatch.setattr(shards, "SCAN_LIMIT", 100)
    _load_cached.cache_clear()
    (raw / "meta.json").write_text('{"dtype": "uint32"}')
    with pytest.raises(UserError, match="too many to scan for the vocabulary"):
        load_corpus(raw)
    _load_cached.cache_clear()
    bad = tmp_path / "bad"
    bad.mkdir()
    _llmc_shard(bad / "train.bin", np.arange(10, dtype=np.uint16), 20240520)
    (bad / "train.bin").write_bytes((bad / "train.bin").read_bytes()[:-2])
    with pytest.raises(UserError, match=r"llm\.c header for 10 uint16 tokens"):
        load_corpus(bad)
    with pytest.raises(UserError, match="no token shards match"):
        load_corpus(str(tmp_path / "nothing_*.bin"))
