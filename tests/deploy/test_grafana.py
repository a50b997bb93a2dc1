"""The Grafana dashboard (deploy/grafana/hanmo.json) asks only for metrics hanmo exports: every
PromQL query's metric names are looked up in what a live api and a live worker serve."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from app.settings import Settings
from app.worker.metrics import serve
from tests.helpers import ROOT, live_api, worker_thread

DASHBOARD = ROOT / "deploy" / "grafana" / "hanmo.json"
SAMPLE = "/v1/models/tiny-sampler/sample"
# what follows a family's name in the exposition, by its TYPE
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count", "")}
LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
NAME = re.compile(r"\b[A-Za-z_:][A-Za-z0-9_:]*\b(?!\s*\()")
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression (or a Grafana label_values() query) reads."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    expr = re.sub(r"label_values\(\s*([A-Za-z_:][\w:]*)[^)]*\)", r"\1", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors
    expr = LABEL_LISTS.sub("", expr)
    expr = re.sub(r"\$\{?\w+\}?", "", expr)  # Grafana variables
    return set(NAME.findall(expr)) - KEYWORDS


def queries(dashboard: dict[str, Any]) -> list[str]:
    """Every panel target's expression and every query variable's query."""
    found = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", ())]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            found.append(query["query"] if isinstance(query, dict) else query)
    return found


def exported(text: str) -> set[str]:
    """The sample names an exposition page can carry: each family's by its TYPE line (so a
    labelled family with no child yet counts), and every sample line's."""
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names |= {name + suffix for suffix in SUFFIXES.get(kind, ("",))}
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def test_metric_names_reads_names_not_functions_labels_or_variables() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, model) (rate(hanmo_x_bucket{model=~"$model",'
        'route="a b"}[$__rate_interval]))) / on (instance) group_left (worker) hanmo_y_info'
    )
    assert metric_names(expr) == {"hanmo_x_bucket", "hanmo_y_info"}
    assert metric_names("label_values(hanmo_queue_depth, model)") == {"hanmo_queue_depth"}


def test_every_dashboard_query_names_a_metric_a_live_api_or_worker_exports(
    tiny: Settings,
) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    with live_api(tiny) as client, worker_thread(tiny) as worker:
        server = serve(worker.metrics.registry, 0, "127.0.0.1")
        try:
            assert client.post(SAMPLE, json={"seed": 1, "n": 2}).status_code == 200
            api_page = client.get("/metrics").text
            worker_page = httpx.get(f"http://127.0.0.1:{server.server_port}/metrics").text
        finally:
            server.shutdown()
            server.server_close()
    available = exported(api_page) | exported(worker_page)
    asked = {name: expr for expr in queries(dashboard) for name in metric_names(expr)}
    missing = {name: expr for name, expr in asked.items() if name not in available}
    assert not missing, missing
    assert len(asked) >= 20  # the extraction found the queries' names, not nothing
    assert all(name.startswith(("hanmo_", "process_")) for name in asked)


def test_dashboard_covers_requests_queues_batches_workers_and_calibration() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    titles = " | ".join(p["title"] for p in dashboard["panels"]).lower()
    for topic in (
        "latency by model and version",
        "queue depth",
        "queue wait",
        "batch size",
        "utilisation",
        "coverage",
    ):
        assert topic in titles, topic
    datasource = {"type": "prometheus", "uid": "${datasource}"}
    assert all(
        p["datasource"] == datasource and p["targets"]
        for p in dashboard["panels"]
        if p["type"] != "row"
    )
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert dashboard["uid"] == "hanmo-overview"
