"""Small builders for Grafana dashboard JSON: queries, panels, rows and their layout.

Only what the Ordermesh dashboards need (`ordermesh.dashboards`): time series and stat
panels under rows, on a 24-column grid filled left to right. Every panel and query
reads from the `${datasource}` template variable, so the same file imports into any
Grafana whatever its Prometheus data source is called.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

Json = dict[str, Any]

DATASOURCE: Final[Json] = {"type": "prometheus", "uid": "${datasource}"}
GRID_WIDTH: Final = 24
# Bumped only when the generated JSON changes shape; Grafana migrates older schemas.
SCHEMA_VERSION: Final = 39
TAG: Final = "ordermesh"


def query(expr: str, legend: str = "") -> Json:
    """One PromQL target; its refId is given by the panel that holds it."""
    return {"expr": expr, "legendFormat": legend or "__auto"}


def timeseries(
    title: str,
    *queries: Json,
    unit: str = "short",
    description: str = "",
    width: int = 12,
    height: int = 8,
    stacked: bool = False,
    minimum: float | None = 0,
) -> Json:
    defaults: Json = {
        "unit": unit,
        "custom": {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 10,
            "showPoints": "never",
            "stacking": {"mode": "normal" if stacked else "none", "group": "A"},
        },
    }
    if minimum is not None:
        defaults["min"] = minimum
    return _panel(
        "timeseries",
        title,
        queries,
        description=description,
        width=width,
        height=height,
        field_defaults=defaults,
        options={
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    )


def stat(
    title: str,
    *queries: Json,
    unit: str = "short",
    description: str = "",
    width: int = 6,
    height: int = 4,
    mappings: Sequence[Json] = (),
    thresholds: Sequence[tuple[float | None, str]] = ((None, "green"),),
) -> Json:
    """The last value of each series; `thresholds` are (from value, colour), the first None."""
    return _panel(
        "stat",
        title,
        queries,
        description=description,
        width=width,
        height=height,
        field_defaults={
            "unit": unit,
            "mappings": list(mappings),
            "thresholds": {
                "mode": "absolute",
                "steps": [{"value": value, "color": color} for value, color in thresholds],
            },
        },
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "none",
            "textMode": "auto",
        },
    )


def value_names(names: dict[int, tuple[str, str]]) -> Json:
    """A value mapping: each number shown as a word in a colour (a state gauge)."""
    return {
        "type": "value",
        "options": {
            str(value): {"text": text, "color": color, "index": index}
            for index, (value, (text, color)) in enumerate(sorted(names.items()))
        },
    }


def row(title: str) -> Json:
    return {
        "type": "row",
        "title": title,
        "collapsed": False,
        "panels": [],
        "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": 0},
    }


def dashboard(
    *, uid: str, title: str, description: str, sections: Sequence[tuple[str, Sequence[Json]]]
) -> Json:
    """A whole dashboard: each section is a row title and the panels under it."""
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": [TAG],
        "editable": True,
        "graphTooltip": 1,  # a shared crosshair: one moment across every panel
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "timezone": "browser",
        "annotations": {"list": []},
        "links": [
            {
                "type": "dashboards",
                "title": "Ordermesh",
                "tags": [TAG],
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
            }
        ],
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                    "includeAll": False,
                    "multi": False,
                    "options": [],
                    "refresh": 1,
                    "regex": "",
                }
            ]
        },
        "panels": _layout(sections),
    }


def _panel(
    kind: str,
    title: str,
    queries: Sequence[Json],
    *,
    description: str,
    width: int,
    height: int,
    field_defaults: Json,
    options: Json,
) -> Json:
    if not queries:
        raise ValueError(f"panel {title!r} has no query")
    targets = [
        {**q, "refId": chr(ord("A") + index), "datasource": DATASOURCE}
        for index, q in enumerate(queries)
    ]
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": targets,
        "fieldConfig": {"defaults": field_defaults, "overrides": []},
        "options": options,
        "gridPos": {"h": height, "w": width, "x": 0, "y": 0},
    }


def _layout(sections: Sequence[tuple[str, Sequence[Json]]]) -> list[Json]:
    """Ids in order, and grid positions: a row, then its panels left to right, wrapping."""
    panels: list[Json] = []
    y = 0
    for title, members in sections:
        panels.append(_placed(row(title), x=0, y=y, id_=len(panels) + 1))
        y += 1
        x = 0
        line_height = 0
        for panel in members:
            width, height = panel["gridPos"]["w"], panel["gridPos"]["h"]
            if x + width > GRID_WIDTH:
                x, y, line_height = 0, y + line_height, 0
            panels.append(_placed(panel, x=x, y=y, id_=len(panels) + 1))
            x += width
            line_height = max(line_height, height)
        y += line_height
    return panels


def _placed(panel: Json, *, x: int, y: int, id_: int) -> Json:
    grid = {**panel["gridPos"], "x": x, "y": y}
    return {**panel, "id": id_, "gridPos": grid}
