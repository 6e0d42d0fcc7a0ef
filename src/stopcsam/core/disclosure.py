"""Small-cell suppression for figures that leave a site (DESIGN §5): primary and complementary.

Hiding every count under 5 (primary suppression) is not enough when a report also shows the
totals those counts add up to: a total and all its parts but one give the hidden one back by
subtraction. Complementary suppression hides more cells until no hidden count can be worked
out from what is shown.

A report is described as a circulation: every cell is an edge from one node to another, and at
every node what flows in equals what flows out. "total = sum of parts" is a node with the
total flowing in and the parts flowing out (a two-way table with its margins is one such
network). A reader knows the shown cells, these sums, and that counts are never negative. A
hidden cell's value is then pinned exactly when no cycle of hidden cells through it can shift
a unit around without making a count negative: moving a unit along a cycle changes no sum,
so the reader cannot tell the two tables apart. Sums of this shape (a network matrix) keep
every bound whole numbers, so "pinned over the reals" and "pinned over whole counts" agree.

Zeros are hidden like any count under 5, but a zero that a reader can work out is allowed to
be: it describes nobody, and protecting it would hide the big figures of every campaign that
ran in one language only. Every hidden cell above zero is protected, the complements too
(one recovered complement gives its neighbours back).
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

SMALL_CELL = 5  # counts under this are suppressed wherever numbers leave the site (§5)


@dataclass(frozen=True)
class Cell:
    key: Hashable
    value: int
    tail: Hashable  # the node it flows out of
    head: Hashable  # the node it flows into; a cell in no sum is a loop (tail == head)
    # Which cells a reader loses least by: complements are taken from the lowest rank first,
    # the smallest value first within a rank. Totals get a higher rank (see suppressed()).
    rank: int = 0
    # False for a count that is part of a sum but never published (the responses that left an
    # item blank): always unknown to readers, protected only while it is a small count.
    published: bool = True


def suppressed(cells: Sequence[Cell], *, threshold: int = SMALL_CELL) -> frozenset[Hashable]:
    """The keys of the cells to hide: every published count under ``threshold``, every
    unpublished cell, and as few further cells as it takes that no protected hidden count
    can be worked out from the rest.

    A complement is the smallest shown detail cell that unpins the exposed one; a total only
    when no detail cell does. Readers of these reports lean on the totals (a campaign's or a
    language's month, the responses to a survey): hiding a small part costs them least, and
    the standard cost in disclosure control is the value hidden.
    """
    hidden = {c.key for c in cells if not c.published or c.value < threshold}
    while (exposed := _first_recoverable(cells, hidden, threshold)) is not None:
        complement = _complement(cells, hidden, exposed)
        if complement is None:  # nothing left to hide; cannot happen in a circulation
            break
        hidden.add(complement.key)
    return frozenset(_without_needless(cells, hidden, threshold))


def recoverable(
    cells: Sequence[Cell], hidden: Iterable[Hashable], *, threshold: int = SMALL_CELL
) -> list[Cell]:
    """The protected hidden cells whose exact value the shown cells give away."""
    hidden = set(hidden)
    return [c for c in cells if _protected(c, hidden, threshold) and _pinned(c, cells, hidden)]


def _protected(cell: Cell, hidden: set[Hashable], threshold: int) -> bool:
    return cell.key in hidden and cell.value > 0 and (cell.published or cell.value < threshold)


def _first_recoverable(cells: Sequence[Cell], hidden: set[Hashable], threshold: int) -> Cell | None:
    for cell in cells:
        if _protected(cell, hidden, threshold) and _pinned(cell, cells, hidden):
            return cell
    return None


def _complement(cells: Sequence[Cell], hidden: set[Hashable], exposed: Cell) -> Cell | None:
    shown = sorted(
        (c for c in cells if c.key not in hidden), key=lambda c: (c.rank, c.value, str(c.key))
    )
    for candidate in shown:
        if not _pinned(exposed, cells, hidden | {candidate.key}):
            return candidate
    return shown[0] if shown else None


def _without_needless(
    cells: Sequence[Cell], hidden: set[Hashable], threshold: int
) -> set[Hashable]:
    """Shows again each complement that turned out not to be needed (one taken early can be
    made redundant by one taken later), the most costly first."""
    changed = True
    while changed:  # showing one can make another needed again, or no longer needed
        changed = False
        complements = [c for c in cells if c.key in hidden and c.published and c.value >= threshold]
        for cell in sorted(complements, key=lambda c: (-c.rank, -c.value, str(c.key))):
            trial = hidden - {cell.key}
            if _first_recoverable(cells, trial, threshold) is None:
                hidden, changed = trial, True
    return hidden


def _pinned(cell: Cell, cells: Sequence[Cell], hidden: set[Hashable]) -> bool:
    """Whether no cycle of hidden cells lets this one grow or shrink by a unit."""
    others = [c for c in cells if c.key in hidden and c.key != cell.key]
    can_grow = _reaches(cell.head, cell.tail, others)
    can_shrink = cell.value > 0 and _reaches(cell.tail, cell.head, others)
    return not (can_grow or can_shrink)


def _reaches(start: Hashable, goal: Hashable, cells: Sequence[Cell]) -> bool:
    """A path from start to goal along which every cell can take a unit: any cell forwards
    (a hidden count may be larger), backwards only a cell above zero."""
    arcs: dict[Hashable, list[Hashable]] = defaultdict(list)
    for c in cells:
        arcs[c.tail].append(c.head)
        if c.value > 0:
            arcs[c.head].append(c.tail)
    seen, queue = {start}, deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            return True
        for following in arcs[node]:
            if following not in seen:
                seen.add(following)
                queue.append(following)
    return False
