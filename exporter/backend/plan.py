"""ConvPlan: a neighbour map arranged for the tensor-core conv (the ``ConvPlan`` op; ``plugins/kernels``).

A conv's tensor-core kernel computes 64 map columns (output rows) per block and skips the offsets none of
its rows uses. In the order sites come in, 64 consecutive rows use far more offsets together than each does
alone (half the rows of a tile have no input for an offset the tile runs, on lidar scenes). The plan
reorders the columns so that rows using the same offsets sit together, as spconv 2.x and TorchSparse++ do:

    plan [K + 1 + ceil(K/32), M] int32:
      rows 0 .. K-1   the map with its columns permuted: plan[k, i] = neighbors[k, perm[i]]
      row K           perm: column i of the plan is output row perm[i]
      rows K+1 ..     column i's offset mask, 32 offsets a word (bit k % 32 of word k // 32)

Columns move only within windows of ``WINDOW`` (4096) consecutive columns (64 tiles), so the GPU kernel
reorders each window in one block, with no global sort and no scatter across the map. Within a window each
column's key is the Gray-code rank of its mask restricted to the window's 32 offsets with the fewest
entries (ties: lower offset first), the rarest offset the most significant bit; columns are sorted stably
by key. Rare offsets split the columns into few large groups and lead; Gray-code ranks put masks that differ
in one offset next to each other. This is exactly what the GPU kernel computes (the kernel tests compare the
two bit for bit), and a pure function of the map.
"""

from __future__ import annotations

import torch

_KEY_BITS = 32
WINDOW = 4096  # columns reordered together (plugins: kConvPlanWindow)
MAX_OFFSETS = 1024  # kernel volumes a plan is made for (plugins: kConvPlanMaxOffsets)


def plan_rows(kernel_volume: int) -> int:
    """Rows of a plan over a map with ``kernel_volume`` offsets: K + 1 + ceil(K / 32)."""
    return kernel_volume + 1 + (kernel_volume + 31) // 32


def column_masks(neighbors: torch.Tensor) -> torch.Tensor:
    """int64 [ceil(K/32), M]: word w of column m has bit j set iff ``neighbors[32 w + j, m] >= 0``."""
    k, m = neighbors.shape
    used = (neighbors >= 0).to(torch.int64)
    words = (k + 31) // 32
    padded = torch.zeros((words * 32, m), dtype=torch.int64)
    padded[:k] = used
    weights = (torch.ones(32, dtype=torch.int64) << torch.arange(32)).view(1, 32, 1)
    return (padded.view(words, 32, m) * weights).sum(1)


def key_bits(neighbors: torch.Tensor) -> torch.Tensor:
    """int64 [K]: the bit of each offset in the sort key, or -1 (offsets past the 32 rarest)."""
    k = neighbors.shape[0]
    counts = (neighbors >= 0).sum(1)
    order = sorted(range(k), key=lambda j: (int(counts[j]), j))  # rarest first, ties by offset
    nbits = min(k, _KEY_BITS)
    bits = torch.full((k,), -1, dtype=torch.int64)
    for rank, j in enumerate(order[:nbits]):
        bits[j] = nbits - 1 - rank
    return bits


def gray_rank(code: torch.Tensor) -> torch.Tensor:
    """The position of each (32-bit) Gray code in the Gray sequence."""
    code = code.clone()
    for shift in (1, 2, 4, 8, 16):
        code ^= code >> shift
    return code


def column_order(neighbors: torch.Tensor) -> torch.Tensor:
    """int64 [M]: the plan's permutation (column i of the plan is column ``order[i]`` of the map)."""
    k, m = neighbors.shape
    order = torch.empty(m, dtype=torch.int64)
    for start in range(0, m, WINDOW):
        window = neighbors[:, start : start + WINDOW]
        bits = key_bits(window)
        used = window >= 0
        key = torch.zeros(window.shape[1], dtype=torch.int64)
        for j in range(k):
            if bits[j] >= 0:
                key |= used[j].to(torch.int64) << int(bits[j])
        order[start : start + window.shape[1]] = start + torch.sort(gray_rank(key), stable=True).indices
    return order


def conv_plan(neighbors: torch.Tensor) -> torch.Tensor:
    """The ConvPlan of ``neighbors`` (int32 [K, M]); see the module docstring."""
    k, m = neighbors.shape
    if k > MAX_OFFSETS:
        raise ValueError(f"ConvPlan: a kernel volume of {k} is above the {MAX_OFFSETS} offsets a plan is made for")
    order = column_order(neighbors)
    masks = column_masks(neighbors)
    plan = torch.empty((plan_rows(k), m), dtype=torch.int32)
    plan[:k] = neighbors[:, order]
    plan[k] = order.to(torch.int32)
    # Masks are uint32 words; int32 holds the same bits (two's complement), as the kernel writes them.
    words = masks[:, order]
    plan[k + 1 :] = torch.where(words >= 1 << 31, words - (1 << 32), words).to(torch.int32)
    return plan


def is_plan(map_or_plan: torch.Tensor, kernel_volume: int) -> bool:
    """Whether a conv's map input is a plan (``plan_rows(K)`` rows) rather than the map itself (K rows)."""
    return map_or_plan.dim() == 2 and map_or_plan.shape[0] == plan_rows(kernel_volume) != kernel_volume


def plan_to_map(plan: torch.Tensor, kernel_volume: int) -> torch.Tensor:
    """The neighbour map [K, M] a plan was made from (its columns put back in output-row order)."""
    k, m = kernel_volume, plan.shape[1]
    perm = plan[k].to(torch.int64)
    if m and not torch.equal(torch.sort(perm).values, torch.arange(m)):
        raise ValueError("ConvPlan: row K of the plan is not a permutation of the output rows")
    neighbors = torch.empty((k, m), dtype=torch.int32)
    neighbors[:, perm] = plan[:k]
    return neighbors
