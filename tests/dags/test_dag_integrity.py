"""Every DAG file imports cleanly, quickly, with nothing heavy at module level, and carries tags and retries."""

import ast
import json
import os
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("airflow")

DAGS = pathlib.Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(DAGS.glob("*.py"))


def _dagbag():
    try:
        from airflow.dag_processing.dagbag import DagBag  # newer Airflow 3.x
    except ImportError:
        from airflow.models import DagBag
    return DagBag(dag_folder=str(DAGS))  # examples are off: AIRFLOW__CORE__LOAD_EXAMPLES=False in conftest


def test_dags_load_with_tags_and_retries():
    bag = _dagbag()
    assert bag.import_errors == {}
    assert "emotion_dataset_refresh" in bag.dags
    for dag_id, dag in bag.dags.items():
        assert dag.tags, dag_id
        assert dag.default_args.get("retries", 0) >= 2, dag_id
        assert dag.doc_md, dag_id


def test_refresh_dag_shape():
    dag = _dagbag().dags["emotion_dataset_refresh"]
    assert dag.max_active_runs == 1
    order = {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks}
    assert order == {
        "ingest": ["probe_clips"],
        "probe_clips": ["extract_features"],
        "extract_features": ["label_clips"],
        "label_clips": ["estimate_attributes"],
        "estimate_attributes": ["validate"],
        "validate": ["publish"],
        "publish": ["export"],
        "export": ["report"],
        "report": [],
    }
    assert dag.get_task("report").trigger_rule == "all_done"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_nothing_heavy_imported_at_top_level(path):
    body = ast.parse(path.read_text()).body
    mods = {a.name for n in body if isinstance(n, ast.Import) for a in n.names}
    mods |= {n.module for n in body if isinstance(n, ast.ImportFrom) and n.module}
    assert {m.split(".")[0] for m in mods} <= {"airflow", "pendulum", "datetime", "__future__"}, mods


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_imports_light(path):
    """In a fresh interpreter, after Airflow itself is loaded, the DAG file pulls in no torch, ray, cv2,
    great_expectations, dvc or emopipe (what makes a DAG file slow for the scheduler to parse; its parse time is
    not asserted here: a timed assertion fails on a loaded machine, not on a slow DAG file)."""
    code = (
        "import importlib.util, json, sys\n"
        "import airflow.sdk, pendulum\n"
        "before = set(sys.modules)\n"
        f"spec = importlib.util.spec_from_file_location('dagmod', {str(path)!r})\n"
        "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
        "new = sorted({m.split('.')[0] for m in set(sys.modules) - before})\n"
        "print(json.dumps({'new': new}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=dict(os.environ)
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert not {"torch", "ray", "cv2", "great_expectations", "dvc", "emopipe", "av", "decord"} & set(result["new"])


def test_refresh_runs_daily_and_when_footage_lands():
    bag = _dagbag().dags
    refresh, landed = bag["emotion_dataset_refresh"], bag["footage_landed"]
    timetable = refresh.timetable
    assert type(timetable).__name__ == "AssetOrTimeSchedule"
    assert [a.name for a in timetable.asset_condition.objects] == ["emopipe_footage"]
    assert timetable.timetable.expression == "0 3 * * *"
    (scan,) = landed.tasks
    assert [o.name for o in scan.outlets] == ["emopipe_footage"]
    assert [o.name for o in refresh.get_task("publish").outlets] == ["emopipe_dataset"]
    assert refresh.params["forget_subjects"] == []
