"""What our kernels do on a given map, counted without a GPU: a model of their tiling and skipping.

``conv_work`` gives, for one SparseConv over a neighbour map, the useful multiply-adds (one per input channel,
output channel and map entry) and the tensor-core multiply-adds the kernel executes: every ``mma.sync``
m16n8k16 it issues, 16 x 8 x 16 each, padding included. It follows the kernel's control flow exactly, for

- ``design="after"``: the kernels in ``plugins/ops/sparse_conv`` now: 64-row tiles, the reduction over the
  tile's active offsets x C_in flattened 32 at a time, one mma skipped per 16-row fragment and k16 step where no
  row of the fragment uses the step's offsets, offsets split over blocks for small grids, with or without a
  ConvPlan (``plan``: the columns reordered and the offsets listed by the plan's masks);
- ``design="before"``: the kernels before issue 16 (commit e821e39): 64-row tiles, each offset any row of the
  tile uses run in 32-channel stages for the whole tile.

``tests/test_kernel_work.py`` checks the ``"after"`` counts against the mma instructions the CPU execution
backend executes (``KernelLibrary.instruction_counts``) on random maps and lidar maps, plans included; the
``"before"`` figures were checked the same way against that commit's kernels when this model was written.

The byte counts are a model of the traffic to memory, not measured: map entries, feature rows gathered,
weights, outputs written and read, partial sums; an access that misses every cache is assumed for the first
touch of a map entry or feature row by a block, later touches by the same block are assumed cached.
``rulebook_work`` counts the rulebook builds' work the same way: hash probes (from the table's real probe
sequences: the kernels' hash, linear probing, the table sizes of ``plugins/common/src/workspace.cpp``), sorted
keys and radix passes, bytes cleared and written, host round trips.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

MMA_MACS = 16 * 8 * 16  # one mma.sync.m16n8k16
TILE_ROWS = 64
GROUP_ROWS = 16
OFFSET_WINDOW = 256
MAX_SPLITS = 4
SPLIT_ROWS = 40960  # the split workspace holds splits x M <= this many partial rows
SECTOR = 32  # bytes of one DRAM sector: the cost of a random access


def block_columns(c_out: int) -> int:
    """Output channels per tensor-core block: the narrowest of 16/32/64/128 covering C_out."""
    return 16 if c_out <= 16 else 32 if c_out <= 32 else 64 if c_out <= 64 else 128


def conv_splits(m: int, c_out: int, kernel_volume: int, multiprocessors: int) -> int:
    """The kernels' sparseConvSplits with the workspace the plugin and the C ABI provide."""
    if m <= 0 or c_out <= 0 or kernel_volume < 2 or kernel_volume > OFFSET_WINDOW:
        return 1
    bn = block_columns(c_out)
    blocks = -(-m // TILE_ROWS) * -(-c_out // bn)
    target = 2 * max(multiprocessors, 1)
    if blocks >= target:
        return 1
    splits = min(MAX_SPLITS, -(-target // blocks), kernel_volume)
    workspace = _align(min(MAX_SPLITS * m, SPLIT_ROWS) * c_out * 4)
    while splits > 1 and splits * m * c_out * 4 > workspace:
        splits -= 1
    return splits


def _align(n: int, a: int = 256) -> int:
    return (n + a - 1) // a * a


@dataclass
class ConvWork:
    """One SparseConv (all counts per call)."""

    useful_macs: int = 0
    executed_macs: int = 0  # tensor-core multiply-adds issued (mma x 2048)
    mma: int = 0
    map_bytes: int = 0  # neighbour map / plan entries the conv reads
    gather_bytes: int = 0  # input feature rows read through the map
    weight_bytes: int = 0  # weight tiles loaded per block (mostly from L2)
    scatter_bytes: int = 0  # output rows written, residual rows read, a separate residual Add's traffic
    partial_bytes: int = 0  # split partial sums written and read back
    map_floor_bytes: int = 0  # what any map format must read: an entry per (input, output) pair, a mask and a row
    blocks: int = 0
    splits: int = 1

    def __iadd__(self, other: ConvWork) -> ConvWork:
        for name, value in asdict(other).items():
            if name != "splits":
                setattr(self, name, getattr(self, name) + value)
        return self


def _group_activity(active: np.ndarray) -> np.ndarray:
    """[K, tiles, 4]: whether any row of each 16-row group of each 64-row tile uses each offset."""
    k, m = active.shape
    tiles = -(-m // TILE_ROWS)
    padded = np.zeros((k, tiles * TILE_ROWS), dtype=bool)
    padded[:, :m] = active
    return padded.reshape(k, tiles, TILE_ROWS // GROUP_ROWS, GROUP_ROWS).any(3)


def _mma_after(groups: np.ndarray, c_in: int, bn: int, splits: int) -> np.ndarray:
    """mma instructions per tile (one channel tile) of the kernel now; ``groups`` [K, tiles, 4]."""
    k, tiles, _ = groups.shape
    per_step = bn // 8  # a 16-row fragment times the block's columns, one k16 step
    out = np.zeros(tiles, dtype=np.int64)
    if c_in == 0:
        return out
    for kb in range(0, k, OFFSET_WINDOW):
        g = groups[kb : kb + OFFSET_WINDOW]
        if c_in % 16 == 0:
            # Every k16 step holds one offset and parts split at offset boundaries: each (offset, group) in use
            # costs C_in / 16 steps.
            out += g.sum(axis=(0, 2)) * (c_in // 16) * per_step
            continue
        for t in range(tiles):
            used = g[:, t, :]
            listed = np.nonzero(used.any(1))[0]
            n = len(listed)
            for z in range(splits):
                begin, end = n * z // splits, n * (z + 1) // splits
                length = (end - begin) * c_in
                for r0 in range(0, length, 16):
                    lo, hi = r0 // c_in, min(r0 + 15, length - 1) // c_in
                    out[t] += int(used[listed[begin + lo : begin + hi + 1]].any(0).sum()) * per_step
    return out


def conv_work(
    neighbors: np.ndarray,
    n_in: int,
    c_in: int,
    c_out: int,
    *,
    design: str = "after",
    plan: np.ndarray | None = None,
    multiprocessors: int = 132,
    residual: bool = False,
    elem_bytes: int = 2,
) -> ConvWork:
    """The work of one fp16 SparseConv over ``neighbors`` [K, M] (int32), as the kernels of ``design`` do it.

    ``plan`` (``design="after"`` only): the map's ConvPlan, which the conv then reads instead (its column
    order and masks decide the tiles). ``residual``: the conv has a residual (fused in ``"after"``; a separate
    Add reading two [M, C_out] tensors and writing one in ``"before"``, with the activation fused into it).
    """
    if design not in ("before", "after"):
        raise ValueError(f"design must be 'before' or 'after', got {design!r}")
    if plan is not None and design != "after":
        raise ValueError("only the kernels after issue 16 read a ConvPlan")
    k, m = neighbors.shape
    valid = (neighbors >= 0) & (neighbors < n_in)
    pairs = int(valid.sum())
    work = ConvWork(useful_macs=pairs * c_in * c_out, map_floor_bytes=pairs * 4 + m * 8)
    if m == 0 or c_out == 0:
        return work
    bn = block_columns(c_out)
    n_tiles = -(-c_out // bn)
    tiles = -(-m // TILE_ROWS)
    rows_in_tile = np.minimum(TILE_ROWS, m - TILE_ROWS * np.arange(tiles))
    out_bytes = m * c_out * elem_bytes
    if design == "before":
        active = _group_activity(valid).any(2)  # [K, tiles]
        stages = active.sum(0) * -(-c_in // 32)
        work.mma = int(stages.sum()) * (TILE_ROWS // 16) * (bn // 8) * 2 * n_tiles
        work.map_bytes = k * m * 4 * n_tiles  # the flag pass reads every entry of the tile
        work.weight_bytes = int(active.sum()) * c_in * min(bn, c_out) * elem_bytes * n_tiles
        work.blocks = tiles * n_tiles
        # Output written; a residual Add (+ activation) reads it and the identity and writes the sum.
        work.scatter_bytes = out_bytes + (3 * out_bytes if residual else 0)
    else:
        columns = plan[:k] if plan is not None else neighbors
        # With a plan, the masks (entry >= 0) decide which offsets a tile runs; entries >= N are still skipped.
        listed = columns >= 0 if plan is not None else (columns >= 0) & (columns < n_in)
        groups = _group_activity(listed)
        splits = conv_splits(m, c_out, k, multiprocessors)
        work.splits = splits
        work.mma = int(_mma_after(groups, c_in, bn, splits).sum()) * n_tiles
        active = groups.any(2)  # [K, tiles]
        words = -(-k // 32)
        if plan is not None:
            # Per block: the tile's masks and permutation, then the map rows of its offsets only.
            per_tile = rows_in_tile * 4 * (words + 1) * splits + active.sum(0) * rows_in_tile * 4
            work.map_bytes = int(per_tile.sum()) * n_tiles
        else:
            work.map_bytes = k * m * 4 * splits * n_tiles
        work.weight_bytes = int(active.sum()) * c_in * min(bn, c_out) * elem_bytes * n_tiles
        work.blocks = tiles * n_tiles * splits
        work.scatter_bytes = out_bytes + (out_bytes if residual else 0)
        if splits > 1:
            work.partial_bytes = 2 * splits * m * c_out * 4
    work.executed_macs = work.mma * MMA_MACS
    work.gather_bytes = pairs * c_in * elem_bytes * n_tiles
    return work


# ------------------------------------------------------------------------------------------ rulebooks
def _mix_hash(keys: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer (device_common.cuh, mixHash), on uint64."""
    with np.errstate(over="ignore"):
        x = keys.astype(np.uint64)
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


def hash_capacity(max_keys: int) -> int:
    capacity = 16
    while capacity < 2 * max(max_keys, 0):
        capacity *= 2
    return capacity


class _Table:
    """The kernels' open-addressing table (linear probing from mixHash & mask) over ``keys``: the probes an insert
    or a lookup makes. The occupied slots of linear probing do not depend on the insertion order, and neither do
    the total probes of the inserts nor those of any lookup, so one sequential build gives the GPU's figures."""

    def __init__(self, keys: np.ndarray, capacity: int) -> None:
        self.capacity = capacity
        mask = np.uint64(capacity - 1)
        home = (_mix_hash(keys) & mask).astype(np.int64)
        occupied = np.zeros(capacity, dtype=bool)
        slot_of = np.empty(len(keys), dtype=np.int64)
        free = np.arange(capacity + 1, dtype=np.int64)  # union-find "next free slot at or after"

        def find(i: int) -> int:
            root = i
            while free[root] != root:
                root = free[root]
            while free[i] != root:
                free[i], i = root, free[i]
            return root

        for j, h in enumerate(home.tolist()):
            s = find(h)
            if s == capacity:  # wrap around
                s = find(0)
            occupied[s] = True
            slot_of[j] = s
            free[s] = s + 1
        self.home, self.slot_of = home, slot_of
        # Distance from each slot to the first empty slot at or after it (cyclic): a failed lookup's probes - 1.
        dist = np.zeros(capacity, dtype=np.int64)
        empty = np.nonzero(~occupied)[0]
        if len(empty):
            nxt = np.searchsorted(empty, np.arange(capacity))
            wrap = nxt == len(empty)
            target = np.where(wrap, empty[0] + capacity, empty[np.minimum(nxt, len(empty) - 1)])
            dist = target - np.arange(capacity)
        self.gap = dist
        self.order = np.argsort(keys)
        self.sorted_keys = keys[self.order]

    def insert_probes(self) -> int:
        return int((((self.slot_of - self.home) % self.capacity) + 1).sum())

    def lookup_probes(self, queries: np.ndarray) -> tuple[int, int]:
        """(probes, hits) of looking up ``queries`` (uint64)."""
        if len(queries) == 0 or len(self.sorted_keys) == 0:
            return 0, 0
        pos = np.clip(np.searchsorted(self.sorted_keys, queries), 0, len(self.sorted_keys) - 1)
        hit = self.sorted_keys[pos] == queries
        mask = np.uint64(self.capacity - 1)
        home = (_mix_hash(queries) & mask).astype(np.int64)
        found = self.slot_of[self.order[pos]]
        probes = np.where(hit, (found - home) % self.capacity + 1, self.gap[home] + 1)
        return int(probes.sum()), int(hit.sum())


@dataclass
class RulebookWork:
    """One rulebook build (or ConvPlan), as memory traffic: random accesses (hash probes, atomics, scattered
    writes), each a 32-byte sector, and streamed bytes (clears, coalesced reads and writes, sort passes)."""

    random_accesses: int = 0
    streamed_bytes: int = 0
    lookups: int = 0  # hash lookups (queries)
    sorted_keys: int = 0
    sort_passes: int = 0
    cleared_bytes: int = 0
    round_trips: int = 0  # host synchronizations

    @property
    def bytes(self) -> int:
        return self.random_accesses * SECTOR + self.streamed_bytes

    def __iadd__(self, other: RulebookWork) -> RulebookWork:
        for name in ("random_accesses", "streamed_bytes", "lookups", "sorted_keys", "sort_passes", "cleared_bytes"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.round_trips += other.round_trips
        return self

    def to_dict(self) -> dict[str, int]:
        d = asdict(self)
        d["bytes"] = self.bytes
        return d


def _keys(indices: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    key = indices[:, 0].astype(np.uint64)
    for d, s in enumerate(shape):
        key = key * np.uint64(s) + indices[:, 1 + d].astype(np.uint64)
    return key


def _sort_bytes(n: int, bits: int) -> tuple[int, int]:
    """(passes, bytes) of CUB's onesweep sort of n uint64 keys over ``bits``: one histogram read, then a read and
    a write per 8-bit pass."""
    passes = max(1, -(-bits // 8))
    return passes, n * 8 + passes * n * 16


def _bits(n: int) -> int:
    return max(0, math.ceil(math.log2(n))) if n > 1 else 0


def subm_rulebook_work(indices: np.ndarray, spatial_shape: tuple[int, ...], kernel: tuple[int, ...], design: str):
    """SubmRulebook over ``indices`` [N, 1 + D] with a dilation-1 kernel centred at kernel // 2."""
    n, ndim = indices.shape[0], len(spatial_shape)
    work = RulebookWork()
    if n == 0:
        return work
    capacity = hash_capacity(n)
    keys = _keys(indices, spatial_shape)
    table = _Table(keys, capacity)
    work.cleared_bytes = capacity * 12  # keys and values
    work.streamed_bytes += work.cleared_bytes + n * (1 + ndim) * 4
    work.random_accesses += table.insert_probes() + n  # atomicCAS per probe, atomicMin on the value
    kvol = math.prod(kernel)
    symmetric = design == "after" and all(k % 2 == 1 for k in kernel)
    offsets = range(kvol // 2) if symmetric else range(kvol)
    probes = hits = queries = 0
    coords = indices[:, 1:].astype(np.int64)
    for k in offsets:
        taps, rest = [], k
        for s in reversed(kernel):
            taps.append(rest % s)
            rest //= s
        delta = np.array(list(reversed(taps))) - np.array(kernel) // 2
        target = coords + delta
        inside = np.all((target >= 0) & (target < np.array(spatial_shape)), axis=1)
        q = _keys(np.concatenate([indices[inside, :1], target[inside]], axis=1), spatial_shape)
        p, h = table.lookup_probes(q)
        probes, hits, queries = probes + p, hits + h, queries + len(q)
    work.lookups = queries
    work.random_accesses += probes + hits  # each hit also reads its value
    if symmetric:
        p, h = table.lookup_probes(keys)  # the centre: each site's own row
        work.lookups += n
        work.random_accesses += p + h + hits  # + the mirrored entry each hit writes
        work.cleared_bytes += (kvol // 2) * n * 4  # the mirrored rows start at -1
        work.streamed_bytes += (kvol // 2) * n * 4 + (kvol // 2 + 1) * n * 4  # that fill, the rows written
    else:
        work.streamed_bytes += kvol * n * 4
    return work


def sparse_rulebook_work(
    indices: np.ndarray,
    out_indices: np.ndarray,
    neighbors: np.ndarray,
    out_shape: tuple[int, ...],
    reach: int,
    bound: int,
    batch_size: int,
    design: str,
):
    """SparseRulebook (regular) from ``indices`` [N, 1 + D] to ``out_indices`` [M, 1 + D] with map ``neighbors``
    [K, M]; ``reach`` = maxOutputsPerInput, ``bound`` = the declared output bound."""
    n, ndim = indices.shape[0], indices.shape[1] - 1
    k, m = neighbors.shape
    work = RulebookWork()
    if n == 0:
        return work
    keys_cap = max(1, min(n * reach, bound))
    capacity = hash_capacity(keys_cap)
    out_keys = _keys(out_indices, out_shape)
    table = _Table(out_keys, capacity)
    pairs = int((neighbors >= 0).sum())
    sites = math.prod(out_shape)
    # Insert: every (input, offset) pair that reaches an output probes for its key (the first inserts it).
    _, cols = np.nonzero(neighbors >= 0)
    pair_keys = out_keys[cols]
    p, _ = table.lookup_probes(pair_keys)
    work.random_accesses += p + m  # atomicCAS per probe; each new key appended (atomicAdd + write)
    work.streamed_bytes += n * (1 + ndim) * 4 * 2  # the pair kernels read the sites (insert and scatter)
    work.cleared_bytes = capacity * 8 + 16
    if design == "before":
        bits = min(31 + _bits(sites), 64)
        sort_n = keys_cap
        work.cleared_bytes += keys_cap * 8  # unused entries all ones, sorted too
    else:
        bits = _bits(batch_size) + _bits(sites)
        sort_n = m
        work.round_trips = 1
    passes, sort_bytes = _sort_bytes(sort_n, bits)
    work.sorted_keys, work.sort_passes = sort_n, passes
    work.streamed_bytes += work.cleared_bytes + sort_bytes
    # Rows assigned (a lookup and a value write per site, the site decoded), -1 fill, scatter (a lookup, a value
    # read and an entry write per pair).
    p_rows, _ = table.lookup_probes(out_keys)
    p_pairs, _ = table.lookup_probes(pair_keys)
    work.lookups = m + pairs
    work.random_accesses += p_rows + m + p_pairs + pairs
    work.streamed_bytes += m * (1 + ndim) * 4 + k * m * 4 + pairs * 4
    return work


def conv_plan_work(neighbors: np.ndarray) -> RulebookWork:
    """ConvPlan over ``neighbors`` [K, M]: the map read to mask the columns, the masks written and read, the map
    re-read at permuted columns (within each window's segment) and the plan written."""
    k, m = neighbors.shape
    words = -(-k // 32)
    work = RulebookWork()
    work.streamed_bytes = k * m * 4 * 2 + words * m * 4 * 3 + (k + 1 + words) * m * 4
    work.sorted_keys = m  # in shared memory, per window
    return work
