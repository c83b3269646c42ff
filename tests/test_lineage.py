"""emopipe.lineage: dataset names after the OpenLineage naming spec, the datasets of a stage folder, the events'
facets, and that lineage never fails a task. The events of real DAG runs are checked in tests/e2e/test_refresh_dag.py.
"""

import json
import logging
import pathlib

import pyarrow as pa
import pytest

from emopipe import io, lineage, schemas
from emopipe.dataset import DatasetWriter, schema_of


def _folder(path: pathlib.Path) -> pathlib.Path:
    """A small stage folder: a sharded clips table, a quarantine file, a metric table under reports/, a gate result."""
    clips = schemas.from_rows(
        [
            {"clip_id": f"footage:c{i}", "corpus": "footage", "native_id": f"c{i}", "media_path": f"c{i}.mp4",
             "media_form": "video", "sha256": f"{i:064x}", "size_bytes": 10 + i, "license": "CC BY 4.0"}
            for i in range(3)
        ],
        schemas.CLIPS,
    )  # fmt: skip
    quarantine = schemas.from_rows(
        [
            {
                "path": "x.mp4",
                "corpus": "footage",
                "stage": "ingest",
                "reason": "empty_file",
                "detail": "0 B",
                "run_id": "r",
            }
        ],
        schema_of("quarantine"),
    )
    with DatasetWriter(path, corpora={"footage": str(path.parent / "corpus")}) as writer:
        writer.write_table("clips", clips)
        writer.write_table("quarantine", quarantine)
        balance = pa.table({"corpus": ["footage"], "label": ["happiness"], "count": [3], "share": [1.0]})
        io.write_table(balance, writer.tmp / "reports" / "class_balance.parquet", schemas.load_schema("class_balance"))
        io.write_json(writer.tmp / "validation.json", {"success": True})
        writer.commit()
    return path


def test_local_paths_urls_and_the_configured_namespace(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert lineage.location("work/runs") == ("file", str(tmp_path / "work" / "runs"))
    assert lineage.location(f"file://{tmp_path}/a/../b") == ("file", str(tmp_path / "b"))
    assert lineage.location("s3://bucket/dvc/store") == ("s3://bucket", "dvc/store")
    assert lineage.location("ssh://host/srv/remote") == ("ssh://host", "/srv/remote")
    monkeypatch.setenv("AIRFLOW__EMOPIPE__LINEAGE_NAMESPACE", "file://nfs-1")  # shared storage seen by every worker
    assert lineage.location("/data/x") == ("file://nfs-1", "/data/x")
    assert lineage.location("s3://bucket/k") == ("s3://bucket", "k")  # URLs keep their own namespace


def test_a_stage_folder_is_its_tables_metric_tables_and_gate_result(tmp_path):
    folder = _folder(tmp_path / "run" / "validate")
    refs = {r.name: r for r in lineage.tables(folder)}
    root = folder.resolve()
    assert set(refs) == {f"{root}/clips", f"{root}/quarantine", f"{root}/reports/class_balance",
                         f"{root}/validation.json"}  # fmt: skip
    clips = refs[f"{root}/clips"]
    assert (clips.namespace, clips.rows, clips.files) == ("file", 3, 1)
    assert clips.size == sum(p.stat().st_size for p in (root / "clips").iterdir())
    assert [f[0] for f in clips.fields] == schemas.CLIPS.names
    assert dict((n, d) for n, _, d in clips.fields)["clip_id"]  # the column docs of schemas/clips.yaml
    assert refs[f"{root}/quarantine"].rows == 1 and refs[f"{root}/reports/class_balance"].rows == 1
    assert refs[f"{root}/validation.json"].fields == ()
    assert [r.name for r in lineage.tables(folder, only=["quarantine"])] == [f"{root}/quarantine"]
    assert lineage.corpora(folder) == [lineage.Ref("file", str(tmp_path / "run" / "corpus"))]


def test_openlineage_datasets_carry_schema_statistics_and_the_version(tmp_path):
    from openlineage.client.serde import Serde

    (clips, *_) = lineage.tables(_folder(tmp_path / "probe_clips"))
    out = json.loads(Serde.to_json(lineage.to_openlineage(clips, output=True)))
    assert out["outputFacets"]["outputStatistics"] | {"_producer": None, "_schemaURL": None} == {
        "rowCount": 3, "size": clips.size, "fileCount": 1, "_producer": None, "_schemaURL": None,
    }  # fmt: skip
    assert [f["name"] for f in out["facets"]["schema"]["fields"]] == schemas.CLIPS.names
    read = json.loads(Serde.to_json(lineage.to_openlineage(clips, output=False)))
    assert "outputFacets" not in read and read["name"] == clips.name

    repo, remote = lineage.release(tmp_path / "data-repo", "s3://bucket/store", "v3", "a" * 40)
    assert (repo.name, remote.namespace, remote.name) == (str(tmp_path / "data-repo"), "s3://bucket", "store")
    event = json.loads(Serde.to_json(lineage.to_openlineage(repo, output=True)))
    assert event["facets"]["version"]["datasetVersion"] == f"v3@{'a' * 40}"
    assert event["facets"]["version"]["_schemaURL"].endswith("DatasetVersionDatasetFacet")
    assert lineage.release(tmp_path, None, "v1", None)[0].version == "v1"


def test_lineage_never_fails_the_task_and_is_a_no_op_outside_one(tmp_path, caplog):
    before = dict(lineage._REPORTED)
    with caplog.at_level(logging.WARNING, logger="emopipe.lineage"):
        assert lineage.stage(inputs=[str(tmp_path / "missing")]) is None  # no such folder: one warning, no raise
        lineage.published(str(tmp_path / "publish.json"))
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        "lineage: stage left out",
        "lineage: published left out",
    ]
    lineage.stage(inputs=[str(_folder(tmp_path / "ok"))])  # outside an Airflow task: nobody to tell
    assert lineage._REPORTED == before


def test_the_provider_loads_the_extractor_for_taskflow_tasks():
    pytest.importorskip("airflow.providers.openlineage")
    from airflow.providers.openlineage.extractors.manager import ExtractorManager
    from airflow.sdk import dag, task

    @dag(schedule=None)
    def d():
        @task
        def t():
            return None

        t()

    manager = ExtractorManager()  # reads [openlineage] extractors, as tests/conftest.py and the Makefile set it
    assert manager.get_extractor_class(d().get_task("t")) is lineage.Extractor
