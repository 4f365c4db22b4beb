from __future__ import annotations

import random

import pytest
from servicekit.backoff import Backoff


@pytest.fixture
def no_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(random, "uniform", lambda low, high: 1.0)


@pytest.mark.usefixtures("no_jitter")
def test_delays_double_up_to_the_cap() -> None:
    backoff = Backoff(first=0.2, cap=1.0)
    assert [round(backoff.next(), 3) for _ in range(5)] == [0.2, 0.4, 0.8, 1.0, 1.0]


@pytest.mark.usefixtures("no_jitter")
def test_reset_starts_from_the_first_delay() -> None:
    backoff = Backoff()
    backoff.next()
    backoff.next()
    backoff.reset()
    assert backoff.next() == pytest.approx(0.2)


def test_jitter_stays_within_half_and_one_and_a_half_times_the_step() -> None:
    backoff = Backoff(first=1.0, cap=1.0)
    delays = [backoff.next() for _ in range(200)]
    assert all(0.5 <= d <= 1.5 for d in delays)
    assert len(set(delays)) > 1  # jittered, not constant


def test_defaults_go_from_a_fifth_of_a_second_to_five_seconds() -> None:
    backoff = Backoff()
    delays = [backoff.next() for _ in range(10)]
    assert 0.1 <= delays[0] <= 0.3
    assert 2.5 <= delays[-1] <= 7.5
