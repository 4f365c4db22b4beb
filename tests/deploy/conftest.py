"""Fixtures of the deploy checks: one parameter per rendering (tests/deploy/cases.py)."""

from __future__ import annotations

import pytest

from tests.deploy.cases import CASES, Manifest, objects


@pytest.fixture(params=CASES)
def chart_case(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def chart_objects(chart_case: str) -> list[Manifest]:
    return objects(chart_case)
