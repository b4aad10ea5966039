"""Near-duplicate texts: MinHash over character shingles, LSH bands, and an exact check.

Each text becomes the set of hashes of its character 5-grams. A MinHash signature (the least
value of each of 64 random bijections of those hashes) estimates the Jaccard similarity of two
sets; LSH bands of the signatures pick the candidate pairs without comparing every pair, and
the exact Jaccard of each candidate's shingle sets decides: a reported pair is never a false
positive, and a pair exactly at the threshold is missed about once in a thousand (a closer
pair, less often).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

SHINGLE_CHARS = 5
"""Character 5-grams: short prompts have too few word n-grams to tell a typo from a new text."""
NUM_PERMUTATIONS = 64
"""Candidates and their estimate; the exact Jaccard of each candidate pair decides."""
CANDIDATE_RECALL = 0.999
"""LSH bands are chosen so that a pair exactly at the threshold is a candidate this often."""
ESTIMATE_SIGMAS = 4.5
"""Candidates whose MinHash estimate is this many standard errors below the threshold are
dropped before the exact check (a true pair is dropped about once in 100,000)."""
ESTIMATE_CHUNK = 1 << 15
MINHASH_CHUNK = 1 << 22
"""Shingles permuted at once: bounds the working array to 32 MiB."""

U64 = npt.NDArray[np.uint64]
U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]


def _mix(x: U64) -> U64:
    """splitmix64's finalizer: every input bit reaches every output bit (in a new array)."""
    x = x ^ (x >> np.uint64(30))
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


@dataclass(frozen=True)
class _Shingles:
    hashes: U64
    """Every text's shingle hashes, text after text."""
    starts: I64
    counts: I64

    def of(self, index: int) -> U64:
        start = int(self.starts[index])
        return self.hashes[start : start + int(self.counts[index])]


def _shingles(texts: Sequence[str], k: int = SHINGLE_CHARS) -> _Shingles:
    """Hash every character k-gram of every text at once (a text shorter than k is one shingle)."""
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    pad = "\0" * k  # separates texts so that no window spans two of them
    codes = np.frombuffer((pad.join(texts) + pad).encode("utf-32-le"), dtype=np.uint32)
    codes64 = codes.astype(np.uint64)
    positions = len(codes64) - k + 1
    weights = _mix(np.arange(1, k + 1, dtype=np.uint64)) | np.uint64(1)
    window = codes64[:positions] * weights[0]
    term = np.empty_like(window)
    for j in range(1, k):
        np.multiply(codes64[j : j + positions], weights[j], out=term)
        window += term
    window = _mix(window)
    counts = np.maximum(lengths - k + 1, 1)
    offsets = np.cumsum(lengths + k) - (lengths + k)
    starts = np.cumsum(counts) - counts
    within = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(starts, counts)
    return _Shingles(window[np.repeat(offsets, counts) + within], starts, counts)


def _signatures(shingles: _Shingles, num_perm: int = NUM_PERMUTATIONS) -> U32:
    """MinHash: per text, the least value of each of `num_perm` bijections h -> a*h + b (mod
    2^64, a odd) of its shingle hashes. One permutation at a time over a flat array is several
    times faster in numpy than a 2-D block reduced along its rows."""
    rng = np.random.default_rng(20240601)
    multipliers = rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) | np.uint64(1)
    offsets = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
    texts = len(shingles.starts)
    # The high 32 bits of each minimum: collisions stay negligible, memory halves.
    signatures = np.empty((texts, num_perm), dtype=np.uint32)
    ends = shingles.starts + shingles.counts
    first = 0
    while first < texts:
        # Texts whose shingles fit in one chunk (at least one text, however long).
        limit = shingles.starts[first] + MINHASH_CHUNK
        last = max(first + 1, int(np.searchsorted(ends, limit, side="right")))
        block = shingles.hashes[shingles.starts[first] : ends[last - 1]]
        segments = shingles.starts[first:last] - shingles.starts[first]
        values = np.empty_like(block)
        for p in range(num_perm):
            np.multiply(block, multipliers[p], out=values)
            values += offsets[p]
            signatures[first:last, p] = np.minimum.reduceat(values, segments) >> np.uint64(32)
        first = last
    return signatures


def _rows_per_band(threshold: float, num_perm: int = NUM_PERMUTATIONS) -> int:
    """The widest band that still makes a pair at the threshold a candidate often enough."""
    best = 1
    for rows in range(1, num_perm + 1):
        if num_perm % rows:
            continue
        bands = num_perm // rows
        if 1 - (1 - threshold**rows) ** bands >= CANDIDATE_RECALL:
            best = rows
    return best


def _candidate_pairs(signatures: U32, rows_per_band: int) -> I64:
    """Pairs (i < j) that share a band; in a bucket each text meets its first and its previous."""
    found: list[I64] = []
    texts, num_perm = signatures.shape
    for band in range(num_perm // rows_per_band):
        key = np.zeros(texts, dtype=np.uint64)
        for column in range(band * rows_per_band, (band + 1) * rows_per_band):
            key = _mix(key ^ signatures[:, column].astype(np.uint64))
        order = np.argsort(key, kind="stable").astype(np.int64)  # equal keys keep index order
        same = key[order][1:] == key[order][:-1]
        starts_group = np.concatenate(([True], ~same))
        positions = np.arange(texts, dtype=np.int64)
        head = np.maximum.accumulate(np.where(starts_group, positions, 0))
        member = ~starts_group
        found.append(np.stack([order[head[member]], order[member]], axis=1))
        found.append(np.stack([order[:-1][same], order[1:][same]], axis=1))
    # One integer per pair: a 1-D unique is much faster than np.unique(axis=0).
    codes = np.unique(np.concatenate([p[:, 0] * texts + p[:, 1] for p in found]))
    return np.stack([codes // texts, codes % texts], axis=1)


@dataclass(frozen=True)
class Sketch:
    """What the near-duplicate search needs of each text: its MinHash signature and, for the
    few candidate pairs, its set of shingle hashes."""

    signatures: U32
    shingle_set: Callable[[int], frozenset[int]]


def sketch(texts: Sequence[str]) -> Sketch:
    """Every text's signature; its shingle set is built when a candidate pair asks for it."""
    shingles = _shingles(texts)
    return Sketch(_signatures(shingles), cache(lambda i: frozenset(shingles.of(i).tolist())))


def near_pairs_in(sketched: Sketch, threshold: float) -> list[tuple[int, int, float]]:
    """`near_pairs` of texts already sketched (a search may sketch its texts its own way)."""
    signatures = sketched.signatures
    if len(signatures) < 2:
        return []
    pairs = _candidate_pairs(signatures, _rows_per_band(threshold))
    error = np.sqrt(threshold * (1 - threshold) / signatures.shape[1])
    least = threshold - ESTIMATE_SIGMAS * error
    keep = np.zeros(len(pairs), dtype=bool)
    for first in range(0, len(pairs), ESTIMATE_CHUNK):
        chunk = pairs[first : first + ESTIMATE_CHUNK]
        estimate = (signatures[chunk[:, 0]] == signatures[chunk[:, 1]]).mean(axis=1)
        keep[first : first + ESTIMATE_CHUNK] = estimate >= least
    found = []
    # Python sets beat np.intersect1d on a few hundred items: no sorting, no array overhead.
    for i, j in pairs[keep].tolist():
        a, b = sketched.shingle_set(i), sketched.shingle_set(j)
        shared = len(a & b)
        similarity = shared / (len(a) + len(b) - shared)
        if similarity >= threshold:
            found.append((i, j, similarity))
    return found


def near_pairs(texts: Sequence[str], threshold: float) -> list[tuple[int, int, float]]:
    """Pairs (i, j, similarity), i < j, of texts whose character 5-gram sets have a Jaccard
    similarity of at least `threshold`. MinHash and LSH find candidates; the exact Jaccard
    decides, so a reported pair is never a false positive. Pass distinct texts: identical
    ones are cheaper to find with a dict."""
    return near_pairs_in(sketch(texts), threshold)
