"""The replica rule the autoscaling signal test applies, against worked examples."""

from __future__ import annotations

import pytest

from tests.autoscaling.hpa import HpaLoop, desired_replicas


def rule(current: int, total: float, *, target: float = 400, low: int = 2, high: int = 10) -> int:
    return desired_replicas(current=current, total=total, target=target, minimum=low, maximum=high)


@pytest.mark.parametrize(
    ("current", "total", "desired"),
    [
        (2, 1200, 3),  # 600 a pod against 400: ceil(2 x 600 / 400)
        (2, 2000, 5),
        (3, 1601, 5),  # just above a multiple of the target rounds up
        (4, 1200, 3),  # scale-in: ceil(1200 / 400)
        (5, 0, 2),  # no load: the minimum
    ],
)
def test_average_value_asks_for_the_total_over_the_per_pod_target(
    current: int, total: float, desired: int
) -> None:
    assert rule(current, total) == desired


@pytest.mark.parametrize(
    ("current", "total", "desired"),
    [
        (2, 879, 2),  # ratio 1.099: no change
        (2, 721, 2),  # ratio 0.901: no change
        (2, 881, 3),  # ratio 1.101: ceil(881 / 400)
        (3, 1300, 3),  # ratio 1.083: no change, though ceil(1300 / 400) = 4
        (3, 1090, 3),  # ratio 0.908: no change, though ceil(1090 / 400) = 3 anyway
        (4, 1500, 4),  # ratio 0.9375: no change, though ceil(1500 / 400) = 4
        (4, 1430, 4),  # ratio 0.894: outside, and ceil(1430 / 400) = 4 is the same
        (4, 1190, 3),  # ratio 0.744: scale-in to ceil(1190 / 400)
    ],
)
def test_inside_the_tolerance_nothing_changes(current: int, total: float, desired: int) -> None:
    assert rule(current, total) == desired


def test_the_answer_is_clamped_to_min_and_max() -> None:
    assert rule(2, 100_000) == 10
    assert rule(10, 100_000) == 10
    assert rule(3, 10) == 2
    assert desired_replicas(current=1, total=0, target=300, minimum=1, maximum=10) == 1
    assert desired_replicas(current=1, total=650, target=300, minimum=1, maximum=10) == 3
    # Within the tolerance of current, but current is outside [min, max]: clamped all the same.
    assert rule(12, 4800) == 10
    assert rule(1, 400) == 2


@pytest.mark.parametrize(
    "arguments",
    [
        {"current": 0, "target": 400, "minimum": 1, "maximum": 10},
        {"current": 2, "target": 0, "minimum": 1, "maximum": 10},
        {"current": 2, "target": 400, "minimum": 3, "maximum": 2},
    ],
)
def test_no_rule_for_nonsense(arguments: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="no rule"):
        desired_replicas(total=100, **arguments)


def test_the_loop_starts_at_min_and_follows_its_own_answers() -> None:
    loop = HpaLoop(target=300, minimum=1, maximum=10)
    assert loop.current == 1
    answers = [loop.evaluate(total, at=i) for i, total in enumerate([0, 900, 950, 640, 320, 0])]
    # 950 on 3 replicas is within the tolerance (ratio 1.056): it stays at 3, where a
    # fresh loop at 1 would ask for ceil(950 / 300) = 4. 320 on 3 asks for 2, and only
    # then does 0 bring it back to 1.
    assert answers == [1, 3, 3, 3, 2, 1]
    assert [s.current for s in loop.steps] == [1, 1, 3, 3, 3, 2]
    assert "900.0 1->3" in loop.history()


def test_settled_and_rose_read_the_loop_history() -> None:
    loop = HpaLoop(target=300, minimum=1, maximum=10)
    assert not loop.settled(at_min=True, hold=1)  # no evaluation yet
    for at, total in enumerate([0, 0, 900, 900, 900]):
        loop.evaluate(total, at=at)
    assert loop.settled(at_min=False, hold=3)
    assert not loop.settled(at_min=False, hold=4)  # t=1 asked for min
    assert loop.settled(at_min=True, hold=2, since=-1) is False
    for at, total in enumerate([0, 0], start=5):
        loop.evaluate(total, at=at)
    assert loop.settled(at_min=True, hold=2)
    assert not loop.settled(at_min=True, hold=2, since=5)  # only t=6 is after it
    assert loop.rose(since=1)
    assert not loop.rose(since=4)
