"""The export: one timed streaming request per round, against `psql COPY` of the same rows.

The client is curl writing to /dev/null (C, so the client does not set the pace), and
the reference is `psql -c "COPY (SELECT …) TO STDOUT" > /dev/null` of the export
customer's orders in the export's order, on Ordermesh's database: how fast PostgreSQL
hands those rows to a client that does nothing with them. Both times include
connecting. The front tier's RSS is sampled meanwhile: its growth is what streaming is
supposed to keep small. Before the timed rounds, one untimed export per implementation
is read here and its lines counted, so a short or broken stream cannot pass as fast.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from typing import Any, Final

import httpx
import psutil

from bench.baselines.queries import ORDER_COLUMNS
from bench.harness.processes import Measure, Watched

CURL_SECONDS: Final = 600


def count_rows(url: str, token: str) -> int:
    """The export's lines, read to the end (the untimed check)."""
    lines = 0
    with httpx.stream(
        "GET",
        f"{url}/v1/orders/export",
        headers={"Authorization": f"Bearer {token}"},
        timeout=CURL_SECONDS,
    ) as answer:
        answer.raise_for_status()
        for chunk in answer.iter_bytes():
            lines += chunk.count(b"\n")
    return lines


def timed_export(url: str, token: str, front: psutil.Process) -> dict[str, Any]:
    curl = shutil.which("curl")
    if curl is None:
        raise RuntimeError("curl is not on PATH")
    command = [
        *(curl, "--silent", "--show-error", "--output", "/dev/null"),
        *("--max-time", str(CURL_SECONDS), "--header", f"Authorization: Bearer {token}"),
        *("--write-out", "%{http_code} %{size_download} %{time_total}"),
        f"{url}/v1/orders/export",
    ]
    with Measure(Watched({"front": front}), interval=0.05) as usage:
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise RuntimeError(f"curl failed ({done.returncode}): {done.stderr}")
    status, size, seconds = done.stdout.split()
    return {
        "status": int(status),
        "bytes": int(size),
        "seconds": float(seconds),
        "front_rss_before_mb": usage.rss_before_mb["front"],
        "front_rss_peak_mb": usage.peak_rss_mb["front"],
        "front_rss_growth_mb": usage.peak_rss_mb["front"] - usage.rss_before_mb["front"],
    }


def copy_statement(customer: str) -> str:
    # The export's query (bench.baselines.queries.EXPORT, the orders service's) with the
    # customer as a literal: psql -c takes no parameters. The id is ours, not input.
    return (
        f"COPY (SELECT {ORDER_COLUMNS} FROM orders WHERE customer_id = '{customer}' "
        "ORDER BY created_at, id) TO STDOUT"
    )


def timed_copy(database_url: str, customer: str) -> dict[str, Any]:
    psql = shutil.which("psql")
    if psql is None:
        raise RuntimeError("psql is not on PATH (Debian: postgresql-client)")
    command = [psql, "--no-psqlrc", "--quiet", database_url, "-c", copy_statement(customer)]
    started = time.perf_counter()
    with open("/dev/null", "wb") as sink:
        done = subprocess.run(command, stdout=sink, stderr=subprocess.PIPE, check=False)  # noqa: S603
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"psql failed: {done.stderr.decode(errors='replace')}")
    return {"seconds": seconds}
