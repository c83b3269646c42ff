"""A scheduled life through Airflow: v1, footage lands (one corrupt file among it), `footage_landed` updates the
asset, the next refresh processes only the new clips, forgets a subject on request, and records row lineage."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
from tests.conftest import TINY_DEMO, write_params

from emopipe import forget, versioning
from emopipe.config import DemoConfig, load_params
from emopipe.dataset import Dataset
from emopipe.demo import make_ravdess_demo
from emopipe.pipelines import refresh

pytestmark = [pytest.mark.airflow, pytest.mark.ray, pytest.mark.slow]  # minutes: in `make test-slow`

BIN = pathlib.Path(sys.executable).parent


def _dags_test(dag_id: str, conf: dict) -> str:
    proc = subprocess.run(
        [str(BIN / "airflow"), "dags", "test", dag_id, "--conf", json.dumps(conf)],
        capture_output=True, text=True, env=dict(os.environ), timeout=900, check=False,
    )  # fmt: skip
    return proc.stdout + proc.stderr


def _report(params) -> dict:
    latest = json.loads((params.work_dir / "runs" / "LATEST.json").read_text())
    return json.loads((pathlib.Path(latest["run_dir"]) / "report.json").read_text())


def _footage_events(root: pathlib.Path) -> list[dict]:
    """The footage asset's events about this test's corpus (the Airflow database is shared by the session's tests)."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetEvent.extra).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == "emopipe_footage")
        ).all()  # fmt: skip
    return [r[0] for r in rows if str(root) in (r[0] or {}).get("roots", {}).values()]


def test_footage_drop_refresh_is_incremental_forgets_and_keeps_lineage(airflow_db, tiny_corpus, tmp_path):
    params_file = write_params(tmp_path / "cfg", ingest={"root": str(tiny_corpus)})
    params = load_params(params_file)
    repo = params.publish.data_repo
    out = _dags_test("emotion_dataset_refresh", {"params_file": str(params_file)})
    first = _report(params)
    assert first["outcome"] == "published", out[-3000:]
    actor1 = {c["clip_id"]: c["sha256"] for c in Dataset(repo / "dataset").clips.to_pylist()
              if c["subject_id"] == "ravdess:actor_01"}  # fmt: skip
    assert actor1

    # Nothing landed: the watcher skips and does not update the asset.
    assert refresh.new_media(str(params_file))["added"] == 0
    out = _dags_test("footage_landed", {"params_file": str(params_file)})
    assert "state=skipped" in out, out[-3000:]
    assert _footage_events(tiny_corpus) == []

    # A new actor's footage lands, with one corrupt file among it.
    generated = make_ravdess_demo(tmp_path / "gen", DemoConfig(**{**TINY_DEMO, "actors": 3, "faults": False}))
    shutil.copytree(generated / "Actor_03", tiny_corpus / "Actor_03")
    (tiny_corpus / "Actor_03" / "01-01-05-01-01-01-03.mp4").write_bytes(os.urandom(4096))
    n_landed = len(list((tiny_corpus / "Actor_03").iterdir()))
    out = _dags_test("footage_landed", {"params_file": str(params_file)})
    assert "state=success" in out, out[-3000:]
    (event,) = _footage_events(tiny_corpus)
    assert (event["added"], event["changed"], event["removed"]) == (n_landed, 0, 0)

    # The refresh the asset triggers (run here by hand), with a deletion request for actor 01.
    conf = {"params_file": str(params_file), "forget_subjects": ["ravdess:actor_01"]}
    out = _dags_test("emotion_dataset_refresh", conf)
    second = _report(params)
    assert second["outcome"] == "published", out[-3000:]
    assert second["publish"]["version"] == "v2"
    assert second["forgotten"] == [
        {"subject_sha256": forget.subject_hash("ravdess:actor_01"), "corpus": "ravdess", "n_clips": len(actor1)}
    ]
    corrupt = [q for q in second["quarantine"] if "Actor_03/01-01-05-01-01-01-03.mp4" in q]
    assert len(corrupt) == 1 and "unreadable_media" in corrupt[0]
    new_clips = n_landed - 1
    assert second["clips"] == first["clips"] - len(actor1) + new_clips
    ext, lab = second["extraction"], second["labelling"]
    assert (ext["n_extracted"], ext["n_reused"]) == (new_clips, second["clips"] - new_clips)  # only what is new
    assert lab["n_reused"] > 0 and lab["n_labelled"] <= new_clips

    # Nothing of actor 01 is reachable from v2: no clip id, no media checksum, anywhere in the checkout.
    dest = versioning.checkout(params, "v2", tmp_path / "v2")
    files = [p for p in dest.rglob("*") if p.is_file() and ".git" not in p.parts and ".dvc" not in p.parts]
    for path in files:
        body = path.read_bytes()
        leaked = [c for c, sha in actor1.items() if c.encode() in body or sha.encode() in body]
        assert not leaked, (path, leaked[:3])
        if path.suffix == ".parquet" and "subject_id" in pq.read_schema(path).names:
            assert "ravdess:actor_01" not in pq.read_table(path, columns=["subject_id"])["subject_id"].to_pylist()
    assert Dataset(dest / "dataset").files("features")  # the crops live here: checked above by clip id
    # v1 is history and still holds actor 01; forget says so.
    cli = subprocess.run(
        [str(BIN / "emopipe"), "-q", "--params", str(params_file), "forget", "--subject", "ravdess:actor_01"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "already registered" in cli.stdout and f"v1 ({len(actor1)} clips)" in cli.stdout

    # Row lineage: carried rows point at v1 and its run, new ones at v2.
    published = Dataset(dest / "dataset")
    rows = published.table("lineage").to_pylist()
    assert {r["clip_id"] for r in rows} == set(published.clips["clip_id"].to_pylist())
    by_first = {r["first_published_in"] for r in rows if r["clip_id"].endswith("-03")}
    assert by_first == {"v2"}
    carried = [r for r in rows if not r["clip_id"].endswith("-03")]
    assert {(r["first_published_in"], r["first_published_run_id"]) for r in carried} == {("v1", first["run_id"])}
    assert versioning.lineage(repo, "v2")["run_id"] == second["run_id"]
    assert versioning.lineage(repo, "v2")["params_sha256"] == second["params_sha256"]
    shown = subprocess.run(
        [str(BIN / "emopipe"), "-q", "--params", str(params_file), "show", "v2"], capture_output=True, text=True,
        check=True,
    ).stdout  # fmt: skip
    assert second["run_id"] in shown and "gate           passed" in shown and "v1: " in shown and "v2: " in shown
    assert refresh.new_media(str(params_file))["added"] == 0  # the refresh that published took the drop in
