"""Complementary suppression on a plain table: a total and its parts."""

from __future__ import annotations

from stopcsam.core.disclosure import Cell, recoverable, suppressed


def _one_way(total: int, parts: dict[str, int]) -> list[Cell]:
    cells = [Cell(name, n, "parts", "total") for name, n in parts.items()]
    return [*cells, Cell("total", total, "total", "parts", rank=1)]


def test_a_total_and_all_parts_but_one_hides_the_next_smallest_part_too() -> None:
    """30 in all, 20 and 7 shown: the hidden 3 was 30 - 20 - 7."""
    cells = _one_way(30, {"a": 20, "b": 7, "c": 3})
    assert suppressed(cells) == {"c", "b"}  # the total, what readers use most, stays
    assert recoverable(cells, {"c"}) == [cells[2]]
    assert recoverable(cells, {"c", "b"}) == []


def test_of_two_parts_one_small_both_are_hidden_and_the_total_stays() -> None:
    assert suppressed(_one_way(23, {"a": 20, "c": 3})) == {"c", "a"}


def test_a_table_with_nothing_small_hides_nothing() -> None:
    assert suppressed(_one_way(30, {"a": 20, "b": 10})) == frozenset()
