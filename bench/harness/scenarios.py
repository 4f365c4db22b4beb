"""The scenarios: what each asks of every implementation, and its wrk Lua script.

Reads rotate through every read customer's token and order ids (or cursors), creates
through many subjects' tokens, so no request repeats one in flight: the gateway's
request coalescing would otherwise answer from a shared call and measure a cache.
Export is not a wrk scenario: it is one timed streaming request per round (bench.harness
.export), next to a `psql COPY` of the same rows. Size repeats `read` at one concurrency
with the readers' orders only (10k) and with the table full (1M): same ids, same tokens.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bench.harness.dataset import Dataset

LUA: Final = Path(__file__).resolve().parents[1] / "lua"
GET: Final = LUA / "get_rotating.lua"
CREATE: Final = LUA / "create_rotating.lua"


@dataclass(frozen=True)
class WrkScenario:
    name: str
    title: str
    script: Path
    env: Callable[[Dataset, int], dict[str, str]]  # (dataset, page limit)


def _get(pairs: Callable[[Dataset], Path], path: str) -> Callable[[Dataset, int], dict[str, str]]:
    def env(dataset: Dataset, limit: int) -> dict[str, str]:
        return {
            "ORDERMESH_PAIRS": str(pairs(dataset)),
            "ORDERMESH_PATH": path.replace("{limit}", str(limit)),
        }

    return env


def _create(dataset: Dataset, limit: int) -> dict[str, str]:
    # A run id of its own per wrk run: keys never repeat, so every request creates.
    return {"ORDERMESH_TOKENS": str(dataset.creators), "ORDERMESH_RUN_ID": uuid.uuid4().hex[:12]}


WRK: Final = {
    "read": WrkScenario(
        "read", "GET /v1/orders/{id}", GET, _get(lambda d: d.reads, "/v1/orders/%s")
    ),
    "list": WrkScenario(
        "list",
        "GET /v1/orders?limit&cursor (a full page)",
        GET,
        _get(lambda d: d.pages, "/v1/orders?limit={limit}&cursor=%s"),
    ),
    "summary": WrkScenario(
        "summary",
        "GET /v1/orders/{id}/summary (order + notify)",
        GET,
        _get(lambda d: d.reads, "/v1/orders/%s/summary"),
    ),
    "create": WrkScenario("create", "POST /v1/orders (new key each)", CREATE, _create),
}
TITLES: Final = {
    **{name: s.title for name, s in WRK.items()},
    "export": "GET /v1/orders/export (100k orders as NDJSON)",
    "size_small": "GET /v1/orders/{id}, readers' orders only seeded",
    "size_large": "GET /v1/orders/{id}, the full table seeded",
}
