"""The run order: over as many rounds as there are levels, each level comes first once,
and every round still measures every level."""

from __future__ import annotations

from bench.harness.runner import rotated


def test_each_level_leads_one_round_and_every_round_has_every_level() -> None:
    levels = [64, 256, 1024]
    rounds = [rotated(levels, r) for r in range(3)]
    assert [r[0] for r in rounds] == [64, 256, 1024]
    assert all(sorted(r) == levels for r in rounds)
    assert rotated(levels, 3) == levels  # the fourth round starts over


def test_an_empty_list_stays_empty() -> None:
    assert rotated([], 2) == []
