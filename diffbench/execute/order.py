"""The order in which a worker's cells take their measured turns.

Blocked order runs all of one cell's repeats, then the next cell's: a GPU that warms up, drifts or
holds a clock state for minutes then puts its whole effect on whichever cell ran at that moment,
and two cells of one setting read as different. Interleaved order runs rounds in which every cell
still measuring takes one turn: round 0 in a seeded shuffle of the cells, each later round in the
reverse of the one before (A B C, C B A, A B C, ...), so that a linear drift adds the same to every
cell over each pair of rounds and a clock state lasting several rounds lands on all of them. The
repeats of two cells in one round are neighbours in time, which `compare` pairs (docs/statistics.md).

Pure functions over anything with an `ended` flag; the worker (execute/worker.py) supplies the cells.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any, Protocol, TypeVar


class Turnable(Protocol):
    ended: bool
    cell: Any  # a CellWork: its settings say which shapes it runs


T = TypeVar("T", bound=Turnable)

# Settings that fix the shapes a compiled denoiser is specialised to.
SHAPE_SETTINGS = ("resolution", "batch_size", "frames", "task")


def turn_groups(runs: Sequence[T], compiled: bool) -> list[list[T]]:
    """The cells that interleave with each other: all of them, except that with torch.compile only
    cells of the same shapes do (its graphs are specialised to shapes, and dynamo keeps 8 per
    function before it falls back to running uncompiled: switching shapes every turn would time
    recompiles, or the fallback)."""
    if not compiled:
        return [list(runs)] if runs else []
    groups: dict[tuple[Any, ...], list[T]] = {}
    for run in runs:
        key = tuple(str(run.cell.settings.get(name)) for name in SHAPE_SETTINGS)
        groups.setdefault(key, []).append(run)
    return list(groups.values())


def round_group(cell_ids: Sequence[str]) -> str:
    """The name of one set of interleaved cells: measured turns pair only within it (the cells of
    another load, or of another shape under torch.compile, ran at other times)."""
    import hashlib

    return hashlib.sha256(",".join(sorted(cell_ids)).encode()).hexdigest()[:12]


def round_order(count: int, seed: int, round_index: int) -> list[int]:
    """The positions of `count` cells in one round: a seeded shuffle, reversed on odd rounds."""
    first = list(range(count))
    random.Random(seed).shuffle(first)
    return first if round_index % 2 == 0 else first[::-1]


def turns(runs: Sequence[T], seed: int) -> Iterator[tuple[int, T]]:
    """(round, cell) in interleaved order until every cell has ended; a cell that ended is left out
    of later rounds (the caller skips one that ends within a round)."""
    round_index = 0
    while any(not run.ended for run in runs):
        for position in round_order(len(runs), seed, round_index):
            if not runs[position].ended:
                yield round_index, runs[position]
        round_index += 1
