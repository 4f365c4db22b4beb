"""The run order: over as many rounds as there are levels, each level comes first once,
and every round still measures every level; a run disturbed by outside load is
measured again, a bounded number of times."""

from __future__ import annotations

from typing import Any

from bench.harness.runner import rotated, until_undisturbed


def test_each_level_leads_one_round_and_every_round_has_every_level() -> None:
    levels = [64, 256, 1024]
    rounds = [rotated(levels, r) for r in range(3)]
    assert [r[0] for r in rounds] == [64, 256, 1024]
    assert all(sorted(r) == levels for r in rounds)
    assert rotated(levels, 3) == levels  # the fourth round starts over


def test_an_empty_list_stays_empty() -> None:
    assert rotated([], 2) == []


def _runs(outside: list[float]) -> tuple[list[int], Any]:
    attempts: list[int] = []

    def once(attempt: int) -> dict[str, Any]:
        attempts.append(attempt)
        return {"attempt": attempt, "outside_cores": outside[attempt]}

    return attempts, once


def test_a_quiet_run_is_kept_at_once() -> None:
    attempts, once = _runs([0.05, 0.0, 0.0])
    kept, disturbed = until_undisturbed(once, 0.25, 2)
    assert (kept["attempt"], disturbed, attempts) == (0, [], [0])


def test_a_disturbed_run_is_measured_again_and_kept_apart() -> None:
    attempts, once = _runs([0.6, 0.3, 0.1])
    kept, disturbed = until_undisturbed(once, 0.25, 2)
    assert kept["attempt"] == 2
    assert [r["attempt"] for r in disturbed] == [0, 1]
    assert attempts == [0, 1, 2]


def test_after_the_last_attempt_the_run_stands_however_busy() -> None:
    attempts, once = _runs([0.6, 0.7, 0.8])
    kept, disturbed = until_undisturbed(once, 0.25, 1)
    assert kept["attempt"] == 1
    assert [r["attempt"] for r in disturbed] == [0]
    assert attempts == [0, 1]
