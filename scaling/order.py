"""The order in which training windows are read: every epoch visits each window once, in a seeded order.

The training split (one array or several shards) is cut into W windows of seq_len + 1 tokens at stride
seq_len, never crossing a shard boundary: shard i of n_i tokens holds W_i = ⌊(n_i − seq_len)/seq_len⌋
windows starting at o_e + j·seq_len, where the offset o_e ∈ [0, seq_len) is drawn per epoch so that window
boundaries move between epochs. Consecutive windows share one token (the last target of one is the first
input of the next), so each token is a prediction target at most once per epoch.

Sample g (= step·batch_size + row) of a run falls in epoch e = ⌊g / W⌋ at position π_e(g mod W), where π_e
is a pseudorandom permutation of [0, W) keyed by (seed, e): a 4-round Feistel network on the smallest
even-bit power of two ≥ W, with cycle walking for values ≥ W (Black & Rogaway 2002, "Ciphers with
Arbitrary Finite Domains"). It costs O(1) memory whatever the corpus size, so a run below one epoch never
sees a token twice as a target, unlike sampling offsets with replacement (at 0.9 epochs that repeats about
a fifth of the tokens and never shows two fifths). Everything is a pure function of (seed, step), so a run
can be replayed, resumed or forked step by step.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["feistel_permute", "window_starts", "windows_per_epoch"]

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix(x: np.ndarray, key: np.uint64) -> np.ndarray:
    """splitmix64's finaliser of x + key (a fast, well-mixing 64-bit hash; Steele et al. 2014)."""
    with np.errstate(over="ignore"):
        z = (x + key) & _MASK64
        z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        return z ^ (z >> np.uint64(31))


def _round_keys(seed: int, epoch: int) -> list[np.uint64]:
    rng = np.random.default_rng([int(seed), int(epoch), 0x5EED])
    return [np.uint64(k) for k in rng.integers(0, 2**63, size=4, dtype=np.int64)]


def feistel_permute(index: np.ndarray, n: int, seed: int, epoch: int) -> np.ndarray:
    """π(index) for the permutation of [0, n) keyed by (seed, epoch) (see the module docstring)."""
    if n <= 1:
        return np.zeros_like(np.asarray(index, dtype=np.int64))
    half = max(1, ((n - 1).bit_length() + 1) // 2)
    mask = np.uint64((1 << half) - 1)
    keys = _round_keys(seed, epoch)

    def once(v: np.ndarray) -> np.ndarray:
        left, right = v >> np.uint64(half), v & mask
        for key in keys:
            left, right = right, left ^ (_mix(right, key) & mask)
        return (left << np.uint64(half)) | right

    out = once(np.asarray(index, dtype=np.uint64))
    todo = out >= np.uint64(n)
    while todo.any():  # cycle walking: the domain is < 4n, so a few rounds on average
        out[todo] = once(out[todo])
        todo = out >= np.uint64(n)
    return out.astype(np.int64)


def windows_per_epoch(sizes: Sequence[int], seq_len: int) -> np.ndarray:
    """W_i, the windows of seq_len + 1 tokens at stride seq_len in each shard of `sizes` tokens."""
    return np.array([max(0, (int(n) - seq_len) // seq_len) for n in sizes], dtype=np.int64)


def window_starts(
    sizes: Sequence[int], seq_len: int, seed: int, samples: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(shard index, start offset) of the windows of global sample numbers `samples` (module docstring)."""
    per_shard = windows_per_epoch(sizes, seq_len)
    total = int(per_shard.sum())
    if total < 1:
        raise ValueError(f"no window of {seq_len + 1} tokens fits in shards of {list(sizes)} tokens")
    bounds = np.concatenate([[0], np.cumsum(per_shard)])
    samples = np.asarray(samples, dtype=np.int64)
    epochs, positions = samples // total, samples % total
    shard = np.empty_like(samples)
    start = np.empty_like(samples)
    for epoch in np.unique(epochs):
        sel = epochs == epoch
        w = feistel_permute(positions[sel], total, seed, int(epoch))
        s = np.searchsorted(bounds, w, side="right") - 1
        offset = int(np.random.default_rng([int(seed), int(epoch), 0x0FF5]).integers(0, seq_len))
        local = w - bounds[s]
        # the epoch's offset fits every shard: o + (W_i − 1)·seq_len + seq_len + 1 ≤ n_i for o < seq_len
        shard[sel], start[sel] = s, offset + local * seq_len
    return shard, start
