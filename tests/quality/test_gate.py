"""The Great Expectations gate: a healthy dataset passes; known-bad datasets fail with the offending values."""

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from emopipe.pipelines.stage_dir import StageDir
from tests.conftest import write_params

from emopipe import io, schemas
from emopipe.config import load_params
from emopipe.quality import validate
from emopipe.stages import probe


@pytest.fixture
def probed_dir(tiny_corpus, tmp_path):
    """A probed dataset folder made without Ray (probe_rows is what each Ray actor runs)."""
    from emopipe.sources import ravdess

    scan = ravdess.scan(tiny_corpus, run_id="t")
    rows = probe.probe_rows(scan.clips.to_pylist(), tiny_corpus)
    ok = [r for r in rows if r["error"] is None]
    return StageDir(tmp_path / "probed").write(
        schemas.from_rows(ok, schemas.CLIPS), scan.quarantine, {"corpus": "ravdess", "root": str(tiny_corpus)}
    )


@pytest.fixture
def params(tmp_path):
    return load_params(write_params(tmp_path / "cfg"))


def test_healthy_dataset_passes_and_builds_data_docs(probed_dir, params, tmp_path):
    result = validate.run(params, probed_dir, tmp_path / "validated", "t")
    assert result.success, result.summary()
    assert result.suites["clips.blocking"]["evaluated"] > 50
    docs = result.data_docs.removeprefix("file://")
    assert docs.endswith("index.html") and pytest.importorskip("pathlib").Path(docs).is_file()
    stored = validate.load_result(tmp_path / "validated")
    assert stored.dataset_digest == result.dataset_digest and len(result.dataset_digest) == 64
    assert (tmp_path / "validated" / "reports" / "class_balance.parquet").is_file()


def _rewrite(folder, fn):
    sd = StageDir(folder)
    io.write_table(fn(sd.clips()), sd.clips_path, schemas.CLIPS)


def test_missing_emotion_fails_and_names_the_class(probed_dir, params, tmp_path):
    _rewrite(probed_dir, lambda t: t.filter(pc.not_equal(t["label"], "disgust")))
    result = validate.run(params, probed_dir, tmp_path / "validated", "t")
    assert not result.success
    text = "\n".join(result.blocking_failures)
    assert "class_balance.blocking" in text and "label=disgust" in text and "share=0.0" in text
    assert "imbalance_ratio" in text


def test_duplicate_content_fails_naming_the_clips(probed_dir, params, tmp_path):
    def dup(t):
        sha = t["sha256"].to_pylist()
        sha[1] = sha[0]
        return t.set_column(t.schema.get_field_index("sha256"), "sha256", pa.array(sha))

    _rewrite(probed_dir, dup)
    result = validate.run(params, probed_dir, tmp_path / "validated", "t")
    assert not result.success
    (msg,) = [m for m in result.blocking_failures if "sha256" in m]
    assert "expect_compound_columns_to_be_unique" in msg and "failed for 2 rows" in msg and "clip_id=" in msg


def test_drifted_column_type_fails(probed_dir, params, tmp_path):
    """A clips file written by another tool with a wrong type is caught by the gate, not published."""
    sd = StageDir(probed_dir)
    table = pq.read_table(sd.clips_path)
    idx = table.schema.get_field_index("duration_s")
    table = table.set_column(idx, "duration_s", pc.cast(table["duration_s"], pa.string()))
    pq.write_table(table, sd.clips_path)
    result = validate.run(params, probed_dir, tmp_path / "validated", "t")
    assert not result.success
    text = "\n".join(result.blocking_failures)
    assert "expect_column_values_to_be_of_type(column='duration_s', type_='float')" in text
    assert "observed 'str'" in text


def test_missing_column_fails_with_schema_error(probed_dir, params, tmp_path):
    sd = StageDir(probed_dir)
    pq.write_table(pq.read_table(sd.clips_path).drop_columns(["sha256"]), sd.clips_path)
    result = validate.run(params, probed_dir, tmp_path / "validated", "t")
    assert not result.success
    assert (
        "does not match schemas/clips.yaml" in result.blocking_failures[0] and "sha256" in result.blocking_failures[0]
    )
    assert any("expect_column_to_exist(column='sha256')" in m for m in result.blocking_failures)


def test_insane_duration_and_unprobed_rows_fail(probed_dir, params, tmp_path):
    def corrupt(t):
        dur = t["duration_s"].to_pylist()
        dur[0] = 10_000.0
        t = t.set_column(t.schema.get_field_index("duration_s"), "duration_s", pa.array(dur))
        has_audio = t["has_audio"].to_pylist()
        has_audio[1] = None
        return t.set_column(t.schema.get_field_index("has_audio"), "has_audio", pa.array(has_audio, pa.bool_()))

    _rewrite(probed_dir, corrupt)
    result = validate.run(params, probed_dir, tmp_path / "validated", "t")
    text = "\n".join(result.blocking_failures)
    assert "column='duration_s'" in text and "duration_s=10000.0" in text
    assert "column='has_audio'" in text


def test_thin_gender_group_warns_then_blocks(probed_dir, tmp_path):
    """One of two actors' clips is mostly removed: below the warning share first, below the blocking share next."""

    def thin(keep):
        def fn(t):
            male = pc.equal(t["gender"], "male")
            idx = [i for i, m in enumerate(male.to_pylist()) if m][keep:]
            return t.filter(pa.array([i not in set(idx) for i in range(t.num_rows)]))

        return fn

    _rewrite(probed_dir, thin(keep=5))  # 5 male vs 16 female clips: 24% < 30% warning, > 10% blocking
    cfg = load_params(
        write_params(
            tmp_path / "cfg",
            validate={
                "min_class_share": {"blocking": 0.0, "warning": 0.0},
                "max_imbalance_ratio": {"blocking": 1000, "warning": 1000},
            },
        )
    )
    result = validate.run(cfg, probed_dir, tmp_path / "v1", "t")
    assert result.success, result.summary()
    assert any("representation.warning" in w and "group=male" in w for w in result.warnings)
    _rewrite(probed_dir, thin(keep=1))
    result = validate.run(cfg, probed_dir, tmp_path / "v2", "t")
    assert not result.success
    assert any("representation.blocking" in m and "group=male" in m for m in result.blocking_failures)
