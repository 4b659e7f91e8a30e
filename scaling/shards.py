"""Token shards: corpora too large for memory, as nanoGPT / llm.c-style binary files of token ids.

`load_corpus(spec)` (scaling/data.py) comes here when `spec` is a ``.bin`` file, a directory of ``.bin``
shards or a glob such as ``/data/fineweb/fineweb_train_*.bin``. Each shard is memory-mapped (np.memmap), never
read whole; training windows never cross a shard (scaling/order.py).

A shard is either
- raw token ids, as nanoGPT's ``prepare.py`` writes them (``np.array(ids, dtype=np.uint16).tofile(...)``):
  uint16 unless ``meta.json`` beside the shards says ``{"dtype": "uint32"}``; or
- an llm.c shard (Karpathy's llm.c ``dev/data`` scripts, modded-nanogpt's FineWeb shards): a header of 256
  little-endian int32 — magic 20240520 (uint16 ids, GPT-2) or 20240801 (uint32 ids, LLaMA 3), a version, the
  token count — followed by the ids.

Validation: shards whose file name contains ``val`` (``val.bin``, ``fineweb_val_000000.bin``) are the
held-out split and the rest train; without one, the last shard in name order is held out (or, for a single
file, its last ``val_fraction`` of tokens).

Vocabulary: the ``vocab_size`` argument, else ``meta.json``'s ``vocab_size``, else the largest id + 1, which
is read from the shards only for corpora of at most SCAN_LIMIT tokens (larger ones must state it).

Identity, recorded with every run (`scaling.data.corpus_identity`): the corpus name, its token counts and
the SHA-256 of the shard list, i.e. every shard's name, byte size, id type and a SHA-256 of its first and
last 64 KiB, which changes when a shard is re-tokenized, truncated, renamed, added or dropped, without
reading terabytes.
"""

from __future__ import annotations

import glob
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scaling.errors import UserError

__all__ = ["LLMC_MAGIC", "SCAN_LIMIT", "Shard", "find_shards", "load_shards", "read_shard"]

LLMC_MAGIC = {20240520: np.dtype(np.uint16), 20240801: np.dtype(np.uint32)}
HEADER_BYTES = 256 * 4
SCAN_LIMIT = 1 << 28  # tokens: above this the vocabulary must be stated (meta.json or vocab_size)
_FINGERPRINT_BYTES = 1 << 16


@dataclass(frozen=True)
class Shard:
    """One token file: where its ids start, their type and how many there are."""

    path: Path
    dtype: np.dtype
    offset: int  # bytes before the first id (the llm.c header, else 0)
    n_tokens: int

    def tokens(self) -> np.memmap:
        """The ids, memory-mapped read-only."""
        return np.memmap(self.path, dtype=self.dtype, mode="r", offset=self.offset, shape=(self.n_tokens,))

    def fingerprint(self) -> dict:
        """Name, byte size, id type and SHA-256 of the first and last 64 KiB (see the module docstring)."""
        size = self.path.stat().st_size
        h = hashlib.sha256()
        with open(self.path, "rb") as f:
            h.update(f.read(_FINGERPRINT_BYTES))
            f.seek(max(0, size - _FINGERPRINT_BYTES))
            h.update(f.read(_FINGERPRINT_BYTES))
        return {"name": self.path.name, "bytes": size, "dtype": self.dtype.name, "sha256_ends": h.hexdigest()}


def read_shard(path: Path, dtype: np.dtype | None = None) -> Shard:
    """Open one shard: an llm.c header decides the id type and count; raw files use `dtype` (uint16)."""
    size = path.stat().st_size
    if size == 0:
        raise UserError(f"token file {path} is empty")
    with open(path, "rb") as f:
        head = f.read(HEADER_BYTES)
    if len(head) == HEADER_BYTES:
        header = np.frombuffer(head, dtype="<i4")
        if int(header[0]) in LLMC_MAGIC:
            kind = LLMC_MAGIC[int(header[0])]
            n = int(header[2])
            if n <= 0 or HEADER_BYTES + n * kind.itemsize != size:
                raise UserError(
                    f"token file {path} has an llm.c header for {n} {kind.name} tokens but {size} bytes"
                )
            return Shard(path, kind, HEADER_BYTES, n)
    kind = np.dtype(dtype or np.uint16)
    if size % kind.itemsize:
        raise UserError(
            f"token file {path} has {size} bytes, not a whole number of {kind.name} ids "
            f"(nanoGPT-style .bin: raw {kind.name} token ids, or an llm.c shard with its header)"
        )
    return Shard(path, kind, 0, size // kind.itemsize)


def is_glob(spec: str) -> bool:
    return any(c in spec for c in "*?[")


def find_shards(spec: str) -> tuple[list[Path], Path | None]:
    """The ``.bin`` files of a file, directory or glob, in name order, and the directory for meta.json."""
    path = Path(spec).expanduser()
    if is_glob(spec):
        files = sorted(Path(p) for p in glob.glob(str(path)) if Path(p).is_file())
        if not files:
            raise UserError(f"no token shards match {spec}")
        parents = {f.parent for f in files}
        return files, parents.pop() if len(parents) == 1 else None
    if path.is_dir():
        files = sorted(p for p in path.glob("*.bin") if p.is_file())
        if not files:
            raise UserError(f"directory {path} holds no .bin token shards (nanoGPT-style train.bin/val.bin)")
        return files, path
    return [path], path.parent


def _meta(directory: Path | None) -> dict:
    if directory is None or not (directory / "meta.json").is_file():
        return {}
    try:
        meta = json.loads((directory / "meta.json").read_text())
    except ValueError as exc:
        raise UserError(f"{directory / 'meta.json'} is not valid JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise UserError(f"{directory / 'meta.json'} must hold a JSON object")
    return meta


def load_shards(spec: str, vocab_size: int | None = None, val_fraction: float = 0.05):
    """A memory-mapped `ArrayTokenSource` over the shards of `spec` (see the module docstring)."""
    from scaling.data import ArrayTokenSource, _split_tail

    files, directory = find_shards(spec)
    meta = _meta(directory)
    dtype = meta.get("dtype")
    if dtype is not None and dtype not in ("uint16", "uint32"):
        raise UserError(f"meta.json dtype must be uint16 or uint32, got {dtype!r}")
    shards = [read_shard(f, np.dtype(dtype) if dtype else None) for f in files]
    val = [s for s in shards if "val" in s.path.name.lower()]
    train = [s for s in shards if s not in val]
    if not train:
        raise UserError(f"{spec}: every shard is a validation shard (their names contain 'val')")
    if val:
        val_desc = ", ".join(s.path.name for s in val)
    elif len(train) > 1:
        val, train = train[-1:], train[:-1]
        val_desc = f"{val[0].path.name} (the last shard; no shard is named *val*)"
    else:
        val_desc = f"last {val_fraction:.0%} of {train[0].path.name}"
    train_arrays = [s.tokens() for s in train]
    val_arrays = [s.tokens() for s in val]
    if not val_arrays:
        first, last = _split_tail(train_arrays[0], val_fraction, str(train[0].path))
        train_arrays, val_arrays = [first], [last]
    stated = vocab_size if vocab_size is not None else meta.get("vocab_size")
    total = sum(s.n_tokens for s in shards)
    largest = None
    if stated is None or total <= SCAN_LIMIT:
        if total > SCAN_LIMIT:
            raise UserError(
                f"{spec}: {total:,} tokens are too many to scan for the vocabulary; state it in "
                f"{(directory or Path('.')) / 'meta.json'} as {{\"vocab_size\": V}} (or pass vocab_size)"
            )
        largest = max(int(a.max()) for a in train_arrays + val_arrays)
    vocab = int(stated) if stated is not None else int(largest) + 1
    if largest is not None and largest >= vocab:
        raise UserError(f"{spec} holds token id {largest} >= the stated vocab {vocab}")
    listing = {"train": [s.fingerprint() for s in train], "val": [s.fingerprint() for s in val]}
    kinds = ", ".join(sorted({s.dtype.name for s in shards}))
    info = {
        "tokenizer": meta.get("tokenizer", f"token ids ({kinds})"),
        "shards": {k: [f["name"] for f in v] for k, v in listing.items()},
        "bytes": sum(f["bytes"] for v in listing.values() for f in v),
        "val_split": val_desc,
        "checksum": hashlib.sha256(json.dumps(listing, sort_keys=True).encode()).hexdigest(),
    }
    name = spec if is_glob(spec) else Path(spec).expanduser().name
    return ArrayTokenSource(name, train_arrays, val_arrays, vocab, info)
