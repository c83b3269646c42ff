"""Shared fixtures: a tiny generated RAVDESS corpus, params files pointing at temp folders, isolated state."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[1]
_STATE = pathlib.Path(tempfile.mkdtemp(prefix="emopipe-tests-"))

# Airflow, Ray and DVC state for the whole session lives in one temp folder, never in ~ or the repo.
os.environ["AIRFLOW_HOME"] = str(_STATE / "airflow")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
os.environ["RAY_AUTH_TOKEN_PATH"] = str(_STATE / "ray" / "auth_token")
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
os.environ["DVC_NO_ANALYTICS"] = "1"
os.environ["DVC_SITE_CACHE_DIR"] = str(_STATE / "dvc-site")
os.environ["OPENBLAS_NUM_THREADS"] = "1"
# OpenLineage events of every DAG run in the session go to one file, never to a backend set in the environment.
OPENLINEAGE_EVENTS = _STATE / "openlineage" / "events.jsonl"
OPENLINEAGE_EVENTS.parent.mkdir()
for _name in [k for k in os.environ if k.startswith(("AIRFLOW__OPENLINEAGE__", "OPENLINEAGE"))]:
    del os.environ[_name]  # a config_path, a connection or OPENLINEAGE_URL would take precedence over the file
os.environ["AIRFLOW__OPENLINEAGE__NAMESPACE"] = "emopipe"
os.environ["AIRFLOW__OPENLINEAGE__EXTRACTORS"] = "emopipe.lineage.Extractor"
os.environ["AIRFLOW__OPENLINEAGE__TRANSPORT"] = json.dumps(
    {"type": "file", "log_file_path": str(OPENLINEAGE_EVENTS), "append": True}
)
os.environ["AIRFLOW__LOGGING__NAMESPACE_LEVELS"] = "airflow.providers.openlineage=WARNING"  # no line per event
os.environ["OPENLINEAGE_CLIENT_LOGGING"] = "WARNING"  # the client sets its own logger's level from this
os.environ.pop("EMOPIPE_PARAMS", None)

TINY_DEMO = {"actors": 2, "seconds": 0.6, "width": 96, "height": 72, "fps": 10, "audio_only": True, "faults": True}


def write_params(folder: pathlib.Path, **sections) -> pathlib.Path:
    """A params.yaml in `folder` whose work_dir, data repo and remote all live in `folder`."""
    raw = {
        "work_dir": "work",
        "ingest": {"corpus": "ravdess", "root": None, "demo": dict(TINY_DEMO)},
        "probe_clips": {"num_workers": 2, "batch_size": 8, "num_cpus": 2},
        "extract_features": {"num_workers": 2, "batch_size": 8, "num_cpus": 2, "n_frames": 4, "frame_size": 72},
        "label_clips": {"num_workers": 2, "batch_size": 16, "num_cpus": 2},
        "validate": {"min_clips": 10},
        "publish": {"data_repo": "work/data-repo", "remote": "work/dvc-remote"},
        # Stages compute in the test's own process unless a test asks for Ray (`ray={"executor": "ray"}`): Ray's
        # start-up is what the Ray tests check, not what every pipeline test should pay.
        "ray": {"executor": "in-process"},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def tiny_corpus_template() -> pathlib.Path:
    """A 2-actor RAVDESS-layout corpus with real media and the four demo faults, generated once."""
    from emopipe.config import DemoConfig
    from emopipe.demo import make_ravdess_demo

    return make_ravdess_demo(_STATE / "corpus-template", DemoConfig(**TINY_DEMO))


@pytest.fixture
def tiny_corpus(tiny_corpus_template, tmp_path) -> pathlib.Path:
    """A private, modifiable copy of the tiny corpus."""
    return pathlib.Path(shutil.copytree(tiny_corpus_template, tmp_path / "ravdess"))


@pytest.fixture(scope="session")
def airflow_db() -> pathlib.Path:
    """An Airflow metadata DB (SQLite) for the session, migrated with the real CLI."""
    subprocess.run(
        [str(pathlib.Path(sys.executable).parent / "airflow"), "db", "migrate"],
        check=True,
        capture_output=True,
        env=dict(os.environ),
    )
    return pathlib.Path(os.environ["AIRFLOW_HOME"])


def _stop_ray_heads(folder: pathlib.Path) -> None:
    """Stop every run's local Ray head recorded under `folder`: outside a DAG run (whose report task stops it) a
    head a pipeline started waits for its idle time, and a dozen idle Ray instances would slow every later test."""
    from emopipe import raycluster

    for state in folder.rglob(raycluster.HEAD_FILE):
        raycluster.stop_head(state.parent)


@pytest.fixture(autouse=True)
def _no_ray_head_left(tmp_path):
    yield
    _stop_ray_heads(tmp_path)


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_STATE, ignore_errors=True)
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is not None:
        _stop_ray_heads(factory.getbasetemp())


def needs_decoder(decoder: str, what: str) -> None:
    """Skip the calling test, saying why, where `decoder` (extract_features.decoder) cannot run here: torchcodec
    needs FFmpeg's shared libraries, which `make test` installs (Debian's) when it runs as root."""
    from emopipe.stages import frames

    try:
        frames.check_decoder(decoder)
    except frames.DecoderUnavailable as err:
        pytest.skip(f"{what} cannot run here: {err}")


def write_dataset(folder: pathlib.Path, clips, quarantine, corpora: dict):
    """A dataset folder holding these clips and quarantine tables (what ingest/probe write)."""
    from emopipe.dataset import DatasetWriter

    with DatasetWriter(folder, corpora=corpora) as writer:
        writer.write_table("clips", clips)
        writer.write_table("quarantine", quarantine)
        return writer.commit()


def rewrite_table(folder: pathlib.Path, name: str, fn=None, *, raw=None):
    """Replace one table of a dataset folder in place: `fn(table) -> table` (conformed), or `raw` written as is (a
    file another tool wrote, types and all), as one file the manifest points at."""
    import json

    import pyarrow.parquet as pq

    from emopipe.dataset import Dataset

    ds = Dataset(folder)
    table = raw if raw is not None else fn(ds.table(name))
    manifest = json.loads((ds.path / "dataset.json").read_text())
    entry = manifest["tables"][name]
    if "shards" in entry:
        for file in ds.files(name):
            file.unlink()
        pq.write_table(table, ds.path / name / "part-rewritten.parquet")
        entry["shards"] = [["part-rewritten.parquet", table.num_rows]]
    else:
        pq.write_table(table, ds.path / entry["file"])
    entry["rows"] = table.num_rows
    (ds.path / "dataset.json").write_text(json.dumps(manifest))
    return Dataset(folder)
