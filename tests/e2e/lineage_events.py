"""The OpenLineage events the session's DAG runs wrote (the file transport tests/conftest.py configures), by run."""

from __future__ import annotations

import json
import pathlib
from typing import Any

from tests.conftest import OPENLINEAGE_EVENTS


def runs(params_file: pathlib.Path, dag_id: str) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """run_id -> task_id -> that task's events in the order written, for the runs of `dag_id` with this params file."""
    found: dict[str, dict[str, list[dict[str, Any]]]] = {}
    text = OPENLINEAGE_EVENTS.read_text() if OPENLINEAGE_EVENTS.is_file() else ""
    for line in text.splitlines():
        event = json.loads(line)
        airflow = event["run"]["facets"].get("airflow")
        if airflow is None or "task" not in airflow:  # a DAG run's own event
            continue
        dag_run = airflow["dagRun"]
        if dag_run["dag_id"] != dag_id or (dag_run.get("conf") or {}).get("params_file") != str(params_file):
            continue
        found.setdefault(dag_run["run_id"], {}).setdefault(airflow["task"]["task_id"], []).append(event)
    return found


def names(datasets: list[dict[str, Any]]) -> set[str]:
    return {d["name"] for d in datasets}


def by_name(datasets: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["name"]: d for d in datasets}


def last_try(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events of a task's last try (a try that failed and was retried has its own START and FAIL)."""
    tries = [e["run"]["facets"]["airflow"]["taskInstance"]["try_number"] for e in events]
    return [e for e, n in zip(events, tries, strict=True) if n == max(tries)]
