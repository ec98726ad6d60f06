"""Train/test split of exported frames in blocks, and the sides kept across appends (numpy only).

Neighbouring frames of one sequence are near-duplicates: a frame in the test split whose
neighbour is in the training split measures memorisation, not generalisation. So frames are
split in *blocks* (frames ``0–9``, ``10–19``, … of one sequence), and once a frame or block has
a side in an export, every later append into that export keeps it there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

SPLIT_BLOCK = 10  #: frames 0–9, 10–19, … of one sequence go to the same side of the split


def split_blocks(
    groups: Sequence[str],
    test_ratio: float,
    seed: int,
    block: int = SPLIT_BLOCK,
    positions: Sequence[int] | None = None,
    fixed: Sequence[bool | None] | None = None,
) -> list[bool]:
    """Per-sample test flag; the samples of one block go to the same side.

    Without ``positions``: consecutive runs of ≤ ``block`` samples of one group form a block.
    With ``positions`` (frame indices in their sequence): frames ``0–9``, ``10–19``, … of one
    group form a block, however sparsely they were picked (e.g. only reviewed frames).
    ``fixed``: per-sample side decided before (True: test; None: free). Such a sample keeps it,
    and its block follows the majority of its fixed samples (a tie: training); only blocks with
    no fixed sample are drawn, towards ``test_ratio`` of all samples.
    """
    block_of: list[int] = []
    if positions is not None:
        ids: dict[tuple[str, int], int] = {}
        for g, pos in zip(groups, positions, strict=True):
            block_of.append(ids.setdefault((g, int(pos) // block), len(ids)))
        k = len(ids) - 1
    else:
        k, prev, run = -1, None, 0
        for g in groups:
            run = run + 1 if g == prev and run < block else 1
            if run == 1:
                k += 1
            block_of.append(k)
            prev = g
    n_blocks = k + 1
    fixed = list(fixed) if fixed is not None else [None] * len(block_of)
    if len(fixed) != len(block_of):
        raise ValueError(f"Got {len(fixed)} fixed sides for {len(block_of)} samples.")
    votes: dict[int, list[bool]] = {}
    for b, side in zip(block_of, fixed):
        if side is not None:
            votes.setdefault(b, []).append(bool(side))
    decided = {b: 2 * sum(v) > len(v) for b, v in votes.items()}
    order = np.random.default_rng(seed).permutation(n_blocks)
    sizes = np.bincount(block_of, minlength=n_blocks)
    test_blocks = {b for b, test in decided.items() if test}
    target, total = test_ratio * len(groups), sum(int(sizes[b]) for b in test_blocks)
    free = [int(b) for b in order if int(b) not in decided]
    has_train = not all(decided.values()) if decided else False
    for j, b in enumerate(free):
        if total >= target or (j == len(free) - 1 and not has_train):  # keep ≥ 1 training block
            break
        test_blocks.add(b)
        total += sizes[b]
    return [b in test_blocks if side is None else bool(side) for b, side in zip(block_of, fixed)]


def previous_sides(
    samples: list[dict[str, Any]], block: int
) -> tuple[dict[tuple[str, int], bool], dict[tuple[str, int], bool]]:
    """Test flags of the frames ``(source, frame_index)`` and blocks ``(group, index // block)``
    exported before. One found on both sides (an export made before sides were kept) is left out:
    its frames keep their own sides and new frames there are split afresh."""
    frames: dict[tuple[str, int], set[bool]] = {}
    blocks: dict[tuple[str, int], set[bool]] = {}
    for s in samples:
        test, index = s.get("split") == "test", int(s.get("frame_index", -1))
        source = str(s.get("source", ""))
        frames.setdefault((source, index), set()).add(test)
        blocks.setdefault((str(s.get("group", source)), index // block), set()).add(test)
    return (
        {k: v.pop() for k, v in frames.items() if len(v) == 1},
        {k: v.pop() for k, v in blocks.items() if len(v) == 1},
    )
