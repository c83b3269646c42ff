"""What a refresh stores and reads: new clips add new shards and only those reach the DVC remote; an old tag still
pulls whole after more refreshes; the gate and publish read each table once; a run keeps the parameters it
started with, whatever happens to params.yaml meanwhile."""

import hashlib
import pathlib
import shutil

import pytest
import yaml

from emopipe import versioning
from emopipe.config import load_params
from emopipe.dataset import Dataset
from emopipe.pipelines import refresh
from emopipe.quality import validate
from tests.conftest import write_params

SMALL = {"n_frames": 2, "frame_size": 48}


def _run(params_file: pathlib.Path, run_id: str) -> dict[str, str]:
    """Every stage of the refresh DAG, called as its tasks call them."""
    out = {"ingest": refresh.ingest(str(params_file), run_id)}
    out["probe"] = refresh.probe_clips(str(params_file), run_id, out["ingest"])
    out["extract"] = refresh.extract_features(str(params_file), run_id, out["probe"])
    out["label"] = refresh.label_clips(str(params_file), run_id, out["extract"])
    out["validate"] = refresh.validate(str(params_file), run_id, out["label"])
    out["publish"] = refresh.publish(str(params_file), run_id, out["validate"])
    refresh.report(str(params_file), run_id)
    return out


def _objects(remote: pathlib.Path) -> set[str]:
    return {p.relative_to(remote).as_posix() for p in remote.rglob("*") if p.is_file()}


def _md5(path: pathlib.Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()  # noqa: S324 - DVC's content address


@pytest.fixture
def corpus(tiny_corpus, tmp_path):
    """The tiny corpus with actor 02 held back (it lands later)."""
    held = tmp_path / "held"
    shutil.move(tiny_corpus / "Actor_02", held)
    return tiny_corpus, held


def test_new_clips_add_new_shards_and_only_those_are_pushed(corpus, tmp_path):
    root, held = corpus
    params_file = write_params(
        tmp_path / "cfg", ingest={"root": str(root)}, ray={"executor": "in-process"}, extract_features=SMALL,
        # what is stored and pushed is checked here, not bias: on 16 clips of one face photograph the FER model's
        # recall per gender group turns on a single prediction (a decoder's rounding moved one)
        validate={"min_clips": 5, "min_recall_ratio": {"blocking": 0.0, "warning": 0.8}},
    )  # fmt: skip
    params = load_params(params_file)
    repo, remote = params.publish.data_repo, pathlib.Path(params.publish.remote)
    _run(params_file, "r1")
    assert versioning.versions(repo, "v") == ["v1"]
    v1 = Dataset(repo / "dataset")
    v1_files = {p.relative_to(v1.path).as_posix(): _md5(p) for p in v1.path.rglob("*") if p.is_file()}
    v1_digest, before = v1.digest, _objects(remote)

    shutil.move(held, root / "Actor_02")  # new footage lands
    _run(params_file, "r2")
    assert versioning.versions(repo, "v") == ["v1", "v2"]
    v2 = Dataset(repo / "dataset")
    v2_files = {p.relative_to(v2.path).as_posix(): _md5(p) for p in v2.path.rglob("*") if p.is_file()}
    for table in ("clips", "features", "labels", "lineage"):
        old = {n for n in v1_files if n.startswith(f"{table}/")}
        new = {n for n in v2_files if n.startswith(f"{table}/")}
        assert old <= new, table  # every shard of v1 is still a shard of v2, same name
        assert new - old, table  # and the new clips went into new shards
        assert all(v2_files[n] == v1_files[n] for n in old), table  # byte for byte
    pushed = {"".join(p.split("/")[-2:]) for p in _objects(remote) - before if not p.endswith(".dir")}
    changed = {h for n, h in v2_files.items() if v1_files.get(n) != h}
    # what the refresh pushed is exactly the files that changed (plus DVC's directory listing): no old shard again
    assert pushed == changed - {"".join(p.split("/")[-2:]) for p in before}

    # v1, pulled from the remote into a fresh clone after the refresh, is the dataset v1 was
    dest = versioning.checkout(params, "v1", tmp_path / "v1")
    assert Dataset(dest / "dataset").digest == v1_digest == versioning.lineage(repo, "v1")["dataset_digest"]


def test_gate_and_publish_read_each_table_once(corpus, tmp_path):
    root, _ = corpus
    params_file = write_params(
        tmp_path / "cfg", ingest={"root": str(root)}, ray={"executor": "in-process"}, extract_features=SMALL,
        validate={"min_clips": 5},
    )  # fmt: skip
    params = load_params(params_file)
    ingested = refresh.ingest(str(params_file), "r1")
    labelled = refresh.label_clips(
        str(params_file), "r1", refresh.extract_features(str(params_file), "r1", refresh.probe_clips(
            str(params_file), "r1", ingested))
    )  # fmt: skip
    ds = Dataset.open(labelled)
    validate.run(params, ds, tmp_path / "validated", "r1")
    tables = [t for t in ds.manifest["tables"] if t != "features"]
    assert all(ds.reads[t] <= 1 for t in tables), dict(ds.reads)
    assert ds.reads["clips"] == 1 and ds.reads["labels"] == 1 and "features" not in ds.reads  # features: never
    published = Dataset.open(tmp_path / "validated")
    versioning.publish(params, published, "r1")
    assert all(n <= 1 for n in published.reads.values()), dict(published.reads)
    assert "features" not in published.reads and published.reads["clips"] == 1


def test_a_run_keeps_its_parameters_when_params_yaml_changes_under_it(corpus, tmp_path):
    root, _ = corpus
    params_file = write_params(
        tmp_path / "cfg", ingest={"root": str(root)}, ray={"executor": "in-process"}, extract_features=SMALL
    )
    ingested = refresh.ingest(str(params_file), "r1")  # the run's first task freezes its parameters
    raw = yaml.safe_load(params_file.read_text())
    raw["extract_features"]["n_frames"] = 3  # someone edits params.yaml while the run goes on
    params_file.write_text(yaml.safe_dump(raw))
    probed = refresh.probe_clips(str(params_file), "r1", ingested)
    extracted = Dataset(refresh.extract_features(str(params_file), "r1", probed))
    assert set(extracted.extraction["n_sampled"].drop_null().to_pylist()) == {2}  # what the run started with
    frozen = load_params(params_file.parent / "work" / "runs" / "r1" / "params.resolved.yaml")
    assert frozen.extract_features.n_frames == 2
    assert refresh.load(str(params_file), "r1").params_sha256 == frozen.params_sha256
    assert refresh.load(str(params_file)).extract_features.n_frames == 3  # the next run gets the edit
