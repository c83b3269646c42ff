"""DVC publishing: versions, no-op on unchanged data, refusal past a failed gate, and reproduction from a clone."""

import hashlib
import pathlib
import subprocess

import pyarrow.compute as pc
import pytest

from emopipe import schemas, versioning
from emopipe.config import load_params
from emopipe.dataset import Dataset
from emopipe.quality import validate
from emopipe.sources import ravdess
from emopipe.stages import probe
from tests.conftest import rewrite_table, write_dataset, write_params


def _validated(corpus: pathlib.Path, folder: pathlib.Path, params, drop_label: str | None = None):
    scan = ravdess.scan(corpus, run_id="t")
    rows = [r for r in probe.probe_rows(scan.clips.to_pylist(), corpus) if r["error"] is None]
    clips = schemas.from_rows(rows, schemas.CLIPS)
    if drop_label:
        clips = clips.filter(pc.not_equal(clips["label"], drop_label))
    write_dataset(folder / "probed", clips, scan.quarantine, {"ravdess": str(corpus)})
    return validate.run(params, folder / "probed", folder / "validated", "t"), folder / "validated"


def _sha(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_publish_then_reproduce_from_a_fresh_clone(tiny_corpus, tmp_path):
    params = load_params(write_params(tmp_path / "cfg"))
    gate, folder = _validated(tiny_corpus, tmp_path / "run1", params)
    assert gate.success
    res = versioning.publish(params, folder, "run-1")
    assert (res.version, res.created) == ("v1", True)
    assert versioning.versions(params.publish.data_repo, "v") == ["v1"]
    lin = versioning.lineage(params.publish.data_repo, "v1")
    assert lin["run_id"] == "run-1" and lin["dataset_digest"] == gate.dataset_digest and lin["gate"]["success"]
    assert lin["source"]["n_clips"] == Dataset(folder).clips.num_rows

    # A clone knows nothing but the tag and the remote: git clone + dvc pull must give the same bytes.
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(params.publish.data_repo), str(clone)], check=True)
    subprocess.run(["git", "-c", "advice.detachedHead=false", "checkout", "-q", "v1"], cwd=clone, check=True)
    assert not (clone / "dataset").exists()
    versioning.dvc(clone, "pull", "-q")
    published = params.publish.data_repo / "dataset"
    files = [p.relative_to(published) for p in published.rglob("*") if p.is_file()]
    assert {"quarantine.parquet", "validation.json", "reports/class_balance.parquet", "dataset.json"} <= {
        str(f) for f in files
    }
    for rel in files:
        assert _sha(clone / "dataset" / rel) == _sha(published / rel), rel
    tables = [p.relative_to(folder) for p in folder.rglob("*.parquet") if p.parts[-2] != "reports"]
    assert tables
    for rel in [*tables, pathlib.Path("validation.json")]:
        assert _sha(clone / "dataset" / rel) == _sha(folder / rel), rel  # what the gate saw is what was published
    # the report shipped inside the version names it (the gate's copy could only say "not published yet")
    assert "<tr><td>Version</td><td>v1</td></tr>" in (clone / "dataset" / "reports" / "bias_report.html").read_text()
    assert Dataset(clone / "dataset").digest == gate.dataset_digest
    assert Dataset(clone / "dataset").table("lineage").num_rows == Dataset(folder).clips.num_rows


def test_unchanged_data_makes_no_new_version(tiny_corpus, tmp_path):
    params = load_params(write_params(tmp_path / "cfg"))
    _, first = _validated(tiny_corpus, tmp_path / "run1", params)
    _, second = _validated(tiny_corpus, tmp_path / "run2", params)
    assert versioning.publish(params, first, "run-1").created
    again = versioning.publish(params, second, "run-2")
    assert (again.version, again.created) == ("v1", False)
    assert "unchanged since v1" in again.message
    assert versioning.versions(params.publish.data_repo, "v") == ["v1"]


def test_changed_data_makes_v2(tiny_corpus, tmp_path):
    params = load_params(write_params(tmp_path / "cfg"))
    _, first = _validated(tiny_corpus, tmp_path / "run1", params)
    versioning.publish(params, first, "run-1")
    (tiny_corpus / "Actor_01" / "03-01-05-02-01-01-01.wav").unlink()
    _, second = _validated(tiny_corpus, tmp_path / "run2", params)
    res = versioning.publish(params, second, "run-2")
    assert (res.version, res.created) == ("v2", True)
    dest = versioning.checkout(params, "v1", tmp_path / "v1")
    assert Dataset(dest / "dataset").clips.num_rows == Dataset(first).clips.num_rows


def test_failed_gate_publishes_nothing(tiny_corpus, tmp_path):
    params = load_params(write_params(tmp_path / "cfg"))
    gate, folder = _validated(tiny_corpus, tmp_path / "run1", params, drop_label="fear")
    assert not gate.success
    with pytest.raises(versioning.PublishRefused, match="quality gate failed"):
        versioning.publish(params, folder, "run-1")
    assert versioning.versions(params.publish.data_repo, "v") == []
    assert not pathlib.Path(params.publish.remote).exists() or not any(pathlib.Path(params.publish.remote).iterdir())


@pytest.mark.parametrize("how", ["new file", "same file edited in place"])
def test_data_changed_after_validation_is_refused(tiny_corpus, tmp_path, how):
    """Publishing trusts the gate's digest only for the very files it read; any other change is hashed again."""
    import pyarrow.parquet as pq

    from emopipe.dataset import Dataset

    params = load_params(write_params(tmp_path / "cfg"))
    _, folder = _validated(tiny_corpus, tmp_path / "run1", params)
    if how == "new file":
        rewrite_table(folder, "clips", lambda t: t.slice(1))
    else:  # the shard keeps its name (which is its content hash when written), its rows change
        (shard,) = Dataset(folder).files("clips")
        table = pq.read_table(shard)
        shard.unlink()  # a hard link of the probed folder's file: replace it, as an editor saving a copy does
        pq.write_table(table.slice(1), shard)
    with pytest.raises(versioning.PublishRefused, match="changed after validation"):
        versioning.publish(params, folder, "run-1")


def test_failed_push_leaves_no_version(tiny_corpus, tmp_path):
    """The push fails (remote is a file, not a folder): no commit, no tag, the repo is as before."""
    params = load_params(write_params(tmp_path / "cfg", publish={"remote": str(tmp_path / "remote-is-a-file")}))
    (tmp_path / "remote-is-a-file").write_text("not a folder")
    _, folder = _validated(tiny_corpus, tmp_path / "run1", params)
    with pytest.raises((versioning.CommandFailed, FileExistsError, NotADirectoryError)):
        versioning.publish(params, folder, "run-1")
    repo = params.publish.data_repo
    if (repo / ".git").exists():
        assert versioning.versions(repo, "v") == []
        assert "lineage.json" not in versioning.git(repo, "ls-files")
