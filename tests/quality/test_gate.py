"""The Great Expectations gate: a healthy dataset passes; known-bad datasets fail with the offending values."""

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from tests.conftest import rewrite_table, write_dataset, write_params

from emopipe import schemas
from emopipe.config import load_params
from emopipe.dataset import Dataset
from emopipe.quality import validate
from emopipe.stages import probe


@pytest.fixture
def probed_dir(tiny_corpus, tmp_path):
    """A probed dataset folder made without Ray (probe_rows is what each Ray actor runs)."""
    from emopipe.sources import ravdess

    scan = ravdess.scan(tiny_corpus, run_id="t")
    rows = probe.probe_rows(scan.clips.to_pylist(), tiny_corpus)
    ok = [r for r in rows if r["error"] is None]
    return write_dataset(
        tmp_path / "probed", schemas.from_rows(ok, schemas.CLIPS), scan.quarantine, {"ravdess": str(tiny_corpus)}
    ).path


@pytest.fixture
def params(tmp_path):
    return load_params(write_params(tmp_path / "cfg"))


def test_healthy_dataset_passes_and_builds_data_docs(probed_dir, params, tmp_path):
    result = validate.run(params, probed_dir, tmp_path / "validated", "t")
    assert result.success, result.summary()
    assert result.suites["clips.blocking"]["evaluated"] > 50
    docs = result.data_docs.removeprefix("file://")
    assert docs.endswith("index.html") and pytest.importorskip("pathlib").Path(docs).is_file()
    # the offline page beside validation.json, linked from the bias report
    assert (tmp_path / "validated" / "validation.html").is_file()
    report = (tmp_path / "validated" / "reports" / "bias_report.html").read_text(encoding="utf-8")
    assert 'href="../validation.html"' in report
    stored = validate.load_result(tmp_path / "validated")
    assert stored.dataset_digest == result.dataset_digest and len(result.dataset_digest) == 64
    assert (tmp_path / "validated" / "reports" / "class_balance.parquet").is_file()
    assert Dataset(tmp_path / "validated").digest == result.dataset_digest  # the tables passed through unchanged
    assert Dataset(probed_dir).reads["clips"] == 0


def _rewrite(folder, fn):
    rewrite_table(folder, "clips", fn)


def test_missing_emotion_fails_and_names_the_class(probed_dir, params, tmp_path):
    _rewrite(probed_dir, lambda t: t.filter(pc.not_equal(t["label"], "disgust")))
    result = validate.run(params, probed_dir, tmp_path / "validated", "t")
    assert not result.success
    text = "\n".join(result.blocking_failures)
    assert "class disgust in ravdess: the share of the corpus's labelled clips is 0.0%; it must be at least" in text
    assert "has a class with no clips at all: ravdess (no disgust)" in text
    raw = [r.raw for r in result.records if r.suite == "class_balance.blocking" and not r.success]  # GX's form
    assert any("expect_column_values_to_be_between(column='share'" in r and "label=disgust" in r for r in raw)


def test_duplicate_content_fails_naming_the_clips(probed_dir, params, tmp_path):
    def dup(t):
        sha = t["sha256"].to_pylist()
        sha[1] = sha[0]
        return t.set_column(t.schema.get_field_index("sha256"), "sha256", pa.array(sha))

    _rewrite(probed_dir, dup)
    result = validate.run(params, probed_dir, tmp_path / "validated", "t")
    assert not result.success
    (msg,) = [m for m in result.blocking_failures if "sha256" in m]
    assert msg.startswith("2 clips have the same content (sha256) as another clip of the same corpus: clip ravdess:")


def test_drifted_column_type_fails(probed_dir, params, tmp_path):
    """A clips file written by another tool with a wrong type is caught by the gate, not published."""
    table = Dataset(probed_dir).raw("clips")
    idx = table.schema.get_field_index("duration_s")
    rewrite_table(
        probed_dir, "clips", raw=table.set_column(idx, "duration_s", pc.cast(table["duration_s"], pa.string()))
    )
    result = validate.run(params, probed_dir, tmp_path / "validated", "t")
    assert not result.success
    text = "\n".join(result.blocking_failures)
    assert "column duration_s of the clips table holds str values; its schema declares float" in text


def test_missing_column_fails_with_schema_error(probed_dir, params, tmp_path):
    rewrite_table(probed_dir, "clips", raw=Dataset(probed_dir).raw("clips").drop_columns(["sha256"]))
    result = validate.run(params, probed_dir, tmp_path / "validated", "t")
    assert not result.success
    assert (
        "does not match schemas/clips.yaml" in result.blocking_failures[0] and "sha256" in result.blocking_failures[0]
    )
    assert "the clips table has no column sha256" in result.blocking_failures


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
    assert ": the duration is 10000 s; it must be between 0.2 s and 600 s" in text
    assert "was never probed (has_audio is empty): clip ravdess:" in text


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
    assert any(w.startswith("gender group 'male' in ravdess: the share") for w in result.warnings)
    _rewrite(probed_dir, thin(keep=1))
    result = validate.run(cfg, probed_dir, tmp_path / "v2", "t")
    assert not result.success
    assert any(m.startswith("gender group 'male' in ravdess: the share") for m in result.blocking_failures)
