"""emotion_dataset_refresh run by Airflow itself (`airflow dags test`) on a generated corpus, then reproduced."""

import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest
from tests.conftest import write_params
from tests.e2e import lineage_events
from tests.e2e.lineage_events import by_name, names

from emopipe import versioning
from emopipe.config import load_params
from emopipe.dataset import schema_of

pytestmark = [pytest.mark.airflow, pytest.mark.ray]

AIRFLOW = str(pathlib.Path(sys.executable).parent / "airflow")


def _dags_test(params_file: pathlib.Path) -> subprocess.CompletedProcess:
    conf = json.dumps({"params_file": str(params_file)})
    return subprocess.run(
        [AIRFLOW, "dags", "test", "emotion_dataset_refresh", "--conf", conf],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=600,
        check=False,
    )


def _report(params) -> dict:
    latest = json.loads((params.work_dir / "runs" / "LATEST.json").read_text())
    return json.loads((pathlib.Path(latest["run_dir"]) / "report.json").read_text())


def _find(tree, key: str):
    """The `data` of a metrics file anywhere in `dvc metrics show --json` output."""
    if isinstance(tree, dict):
        if key in tree:
            return tree[key]["data"]
        for value in tree.values():
            if (found := _find(value, key)) is not None:
                return found
    return None


def _without_nulls(tree):
    if isinstance(tree, dict):
        return {k: _without_nulls(v) for k, v in tree.items() if v is not None}
    return tree


def _sha(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


REFRESH_TASKS = (
    "ingest", "probe_clips", "extract_features", "label_clips", "estimate_attributes", "validate", "publish", "export",
    "report",
)  # fmt: skip


def _refresh_lineage(params_file: pathlib.Path, report: dict) -> dict[str, list[dict]]:
    """The run's OpenLineage events per task, after checking each task has one START and one COMPLETE."""
    tasks = lineage_events.runs(params_file, "emotion_dataset_refresh")[report["run_id"]]
    assert set(tasks) == set(REFRESH_TASKS)
    for task, events in tasks.items():
        assert [e["eventType"] for e in lineage_events.last_try(events)] == ["START", "COMPLETE"], task
        assert {e["job"]["namespace"] for e in events} == {"emopipe"}, task
    return {task: events[-1] for task, events in tasks.items()}


def _check_refresh_lineage(done: dict[str, dict], report: dict, params, version: str) -> None:
    """Each task names what it read and wrote; what a task wrote is what the next one read, by the same names."""
    run_dir = pathlib.Path(report["run_dir"]).resolve()
    ins = {t: names(e["inputs"]) for t, e in done.items()}
    outs = {t: names(e["outputs"]) for t, e in done.items()}
    datasets = [d for e in done.values() for d in e["inputs"] + e["outputs"]]
    assert {d["namespace"] for d in datasets} == {"file"}
    assert ins["ingest"] == {str(pathlib.Path(root).resolve()) for root in report["corpora"].values()}
    assert {f"{run_dir}/ingest/clips", f"{run_dir}/ingest/quarantine"} <= outs["ingest"]
    chain = ("ingest", "probe_clips", "extract_features", "label_clips", "estimate_attributes", "validate", "publish")
    for before, after in zip(chain, chain[1:], strict=False):
        assert ins[after] == outs[before], (before, after)
    features = by_name(done["extract_features"]["outputs"])[f"{run_dir}/extract_features/features"]
    assert features["outputFacets"]["outputStatistics"]["rowCount"] == report["clips"]
    assert [f["name"] for f in features["facets"]["schema"]["fields"]] == schema_of("features").names
    assert {f"{run_dir}/label_clips/labels", f"{run_dir}/label_clips/agreement"} <= outs["label_clips"]
    assert {f"{run_dir}/validate/validation.json", f"{run_dir}/validate/reports/class_balance"} <= outs["validate"]
    released = by_name(done["publish"]["outputs"])
    assert set(released) == {
        str(params.publish.data_repo.resolve()),
        str(pathlib.Path(params.publish.remote).resolve()),
    }
    assert {d["facets"]["version"]["datasetVersion"] for d in released.values()} == {version}
    assert outs["report"] == {f"{run_dir}/report.json", f"{run_dir}/report.md"}
    assert {f"{run_dir}/validate/validation.json", f"{run_dir}/publish.json"} <= ins["report"]


def test_refresh_publishes_and_a_clone_reproduces_it(airflow_db, tmp_path):
    # root: null -> the DAG generates the tiny demo corpus; more than 8 new rows -> a stage runs as a Ray job
    params_file = write_params(tmp_path, ray={"executor": "auto", "local_below_rows": 8})
    proc = _dags_test(params_file)
    params = load_params(params_file)
    report = _report(params)
    assert report["outcome"] == "published", proc.stdout[-3000:] + proc.stderr[-3000:]
    executors = {s["stage"]: s["executor"] for s in report["stages"]}
    assert executors == {"probe_clips": "ray", "extract_features": "ray", "label_clips": "ray"}
    run_dir = pathlib.Path(report["run_dir"])
    heads = [line for line in (run_dir / "ray-head.log").read_text().splitlines() if "Started a local Ray" in line]
    assert len(heads) == 1  # one local Ray for the whole run, shared by its three Ray stages
    assert not (run_dir / "ray-head.json").exists()  # and stopped by the report task
    assert report["publish"]["version"] == "v1"
    assert report["quarantine_by_reason"] == {
        "bad_name": 1,
        "code_out_of_range": 1,
        "empty_file": 1,
        "unreadable_media": 1,
    }
    assert "state=success" in proc.stdout + proc.stderr
    assert pathlib.Path(report["gate"]["data_docs"].removeprefix("file://")).is_file()
    assert "OpenLineage" not in proc.stdout + proc.stderr  # the provider emits quietly: nothing failed, no chatter

    # OpenLineage: every task's datasets, and the publish task's version = the tag and the commit it points at.
    commit = versioning.git(params.publish.data_repo, "rev-parse", "v1^{commit}").strip()
    assert report["publish"]["commit"] == commit
    _check_refresh_lineage(_refresh_lineage(params_file, report), report, params, f"v1@{commit}")

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(params.publish.data_repo), str(clone)], check=True)
    subprocess.run(["git", "-c", "advice.detachedHead=false", "checkout", "-q", "v1"], cwd=clone, check=True)
    versioning.dvc(clone, "pull", "-q")
    published = params.publish.data_repo / "dataset"
    files = sorted(p.relative_to(published) for p in published.rglob("*") if p.is_file())
    folders = {f.parts[0] for f in files if len(f.parts) > 1}
    assert {"clips", "features", "labels", "lineage", "reports"} <= folders and pathlib.Path("dataset.json") in files
    extraction = report["extraction"]
    assert extraction["n_extracted"] == extraction["n_clips"] == report["clips"]
    assert extraction["mean_face_share"] > 0.5  # the demo pans over a photograph of a face
    for rel in files:
        assert _sha(clone / "dataset" / rel) == _sha(published / rel), rel

    assert {"bias_report.html", "datasheet.md"} <= {p.name for p in (published / "reports").iterdir()}

    # The published version audited by the bias_audit DAG, by the CLI and by `dvc metrics show`: same numbers.
    conf = json.dumps({"tag": "v1", "params_file": str(params_file)})
    proc = subprocess.run(
        [AIRFLOW, "dags", "test", "bias_audit", "--conf", conf],
        capture_output=True, text=True, env=dict(os.environ), timeout=600, check=False,
    )  # fmt: skip
    assert "state=success" in proc.stdout + proc.stderr, proc.stdout[-3000:] + proc.stderr[-3000:]
    (audit_dir,) = (params.work_dir / "audits").glob("v1__*")
    dag_metrics = json.loads((audit_dir / "bias.json").read_text())
    (audit_run,) = lineage_events.runs(params_file, "bias_audit").values()
    assert {t: [e["eventType"] for e in lineage_events.last_try(events)] for t, events in audit_run.items()} == {
        "checkout": ["START", "COMPLETE"],
        "audit": ["START", "COMPLETE"],
    }
    checkout, audit = audit_run["checkout"][-1], audit_run["audit"][-1]
    (pulled,) = checkout["inputs"]  # the dataset and version the publish task wrote
    assert pulled["name"] == str(params.publish.data_repo.resolve())
    assert pulled["facets"]["version"]["datasetVersion"] == f"v1@{commit}"
    assert f"{audit_dir.resolve()}/checkout/dataset/clips" in names(checkout["outputs"])
    assert names(audit["inputs"]) == names(checkout["outputs"])
    assert f"{audit_dir.resolve()}/bias.json" in names(audit["outputs"])
    assert dag_metrics["label_dependence"]["ravdess"]["gender"]["n_clips"] > 0
    assert "fer@" in next(iter(dag_metrics["model_parity"]))
    cli = subprocess.run(
        [str(pathlib.Path(sys.executable).parent / "emopipe"), "-q", "--params", str(params_file), "audit", "v1",
         "--out", str(tmp_path / "cli-audit")],
        capture_output=True, text=True, env=dict(os.environ), timeout=600, check=False,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stdout[-2000:] + cli.stderr[-2000:]
    assert json.loads((tmp_path / "cli-audit" / "bias.json").read_text()) == dag_metrics
    shown = versioning.dvc(params.publish.data_repo, "metrics", "show", "--json")
    assert _find(json.loads(shown), "metrics/bias.json") == _without_nulls(dag_metrics)  # DVC leaves nulls out

    # Same inputs again: the DAG succeeds and says no new version was made.
    proc = _dags_test(params_file)
    report = _report(params)
    assert report["outcome"] == "unchanged", proc.stdout[-3000:]
    assert versioning.versions(params.publish.data_repo, "v") == ["v1"]
    publish = _refresh_lineage(params_file, report)["publish"]
    assert {d["facets"]["version"]["datasetVersion"] for d in publish["outputs"]} == {f"v1@{commit}"}
    assert report["extraction"]["n_extracted"] == 0  # every clip's features came from the first run
    assert report["extraction"]["n_reused"] == report["clips"]
    # nothing new: no stage computed a row, so none started Ray or loaded a model
    assert {s["stage"]: (s["n_processed"], s["executor"]) for s in report["stages"]} == {
        "probe_clips": (0, "none"), "extract_features": (0, "none"), "label_clips": (0, "none")
    }  # fmt: skip
    assert not (pathlib.Path(report["run_dir"]) / "ray-head.log").exists()


def test_gate_failure_stops_the_dag_and_publishes_nothing(airflow_db, tiny_corpus, tmp_path):
    for path in tiny_corpus.rglob("*-07-*"):  # no disgust clip at all
        path.unlink()
    params_file = write_params(tmp_path / "cfg", ingest={"root": str(tiny_corpus)})
    proc = _dags_test(params_file)
    params = load_params(params_file)
    report = _report(params)
    assert report["outcome"] == "gate_failed"
    assert any("class disgust in ravdess" in m for m in report["gate"]["blocking_failures"])
    assert "publish" not in report
    assert versioning.versions(params.publish.data_repo, "v") == []
    out = proc.stdout + proc.stderr
    assert "state=failed" in out and "class disgust in ravdess" in out
    tasks = lineage_events.runs(params_file, "emotion_dataset_refresh")[report["run_id"]]
    assert "publish" not in tasks
    (failed,) = [e for e in tasks["validate"] if e["eventType"] == "FAIL"]  # what the refused gate read and wrote
    gate_dir = pathlib.Path(report["run_dir"]).resolve() / "validate"
    assert names(failed["inputs"]) == names(tasks["label_clips"][-1]["outputs"])
    assert {f"{gate_dir}/validation.json", f"{gate_dir}/clips"} <= names(failed["outputs"])
    run_dir = pathlib.Path(report["run_dir"])
    assert "BLOCKING" in (run_dir / "report.md").read_text()
    shutil.rmtree(run_dir)
