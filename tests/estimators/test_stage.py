"""The estimate_attributes stage on the generated RAVDESS-layout demo (and footage in the real layout): tiny real
transformers classifiers run on Ray actors, one estimates row per clip and estimator; the default run estimates
nothing and costs nothing."""

import pytest

from emopipe import schemas
from emopipe.config import ParamsError, SourceConfig, load_params
from emopipe.dataset import Dataset
from emopipe.estimators.stage import estimator_version
from emopipe.pipelines import estimate_attributes, extract_features, ingest, refresh
from tests.conftest import write_params
from tests.corpora import make_footage
from tests.estimators import tiny


@pytest.fixture(scope="module")
def extracted(tiny_corpus_template, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("estimating")
    make_footage(tmp / "footage")
    sources = [SourceConfig(corpus="ravdess", root=tiny_corpus_template),
               SourceConfig(corpus="footage", root=tmp / "footage", license="CC BY 4.0")]  # fmt: skip
    ingest.run_sources(sources, tmp / "ingest", "r1")
    params = load_params(write_params(tmp / "cfg", ray={"executor": "in-process"}))
    extract_features.run(params, tmp / "ingest", tmp / "ext", "r1")
    return tmp / "ext"


@pytest.mark.ray
@pytest.mark.slow  # minutes: in `make test-slow`
def test_tiny_face_and_voice_estimators_run_through_ray_actors(extracted, tmp_path):
    face = tiny.brightness_face(tmp_path / "face", threshold=0.3)
    voice = tiny.constant_voice(tmp_path / "voice", says=1, probability=0.9, classes=("child", "female", "male"))
    specs = [
        {"name": "face", "kind": "face", "path": str(face), "attribute": "gender",
         "label_map": {"Male": "male", "Female": "female"}},
        {"name": "voice", "kind": "audio", "path": str(voice), "attribute": "gender"},  # "child": no such value
    ]  # fmt: skip
    section = {"num_workers": 2, "num_cpus": 2, "batch_size": 8, "estimators": specs}
    params = load_params(write_params(tmp_path / "cfg", ray={"executor": "ray"}, estimate_attributes=section))
    summary = estimate_attributes.run(params, extracted, tmp_path / "est", "r1")
    assert summary.executor == "ray" and summary.n_errors == 0
    out = Dataset(tmp_path / "est")
    clips = out.clips.to_pylist()
    rows = out.table("estimates").to_pylist()
    assert len(rows) == summary.n_rows == 2 * len(clips)
    versions = {estimator_version(s) for s in params.estimate_attributes.estimators}
    assert {r["estimator"] for r in rows} == versions and all(v.startswith(("face@", "voice@")) for v in versions)
    by = {(r["clip_id"], r["kind"]): r for r in rows}
    broken = {r["clip_id"] for r in out.extraction.to_pylist() if r["error"]}
    assert broken  # the demo's truncated download: no crops, no audio
    for clip in clips:
        face_row, voice_row = by[clip["clip_id"], "face"], by[clip["clip_id"], "audio"]
        if clip["media_form"] == "audio" or clip["clip_id"] in broken or clip["corpus"] == "footage":
            assert face_row["abstain_reason"] == "no_face" and face_row["value"] is None  # footage: block patterns
        else:
            assert face_row["value"] in {"female", "male"} and 0.5 <= face_row["confidence"] <= 1
            assert face_row["n_inputs"] == 4 and set(schemas.as_dict(face_row["probabilities"])) == {"male", "female"}
        if clip["clip_id"] in broken:
            assert voice_row["abstain_reason"] == "no_audio"
        else:
            assert (voice_row["value"], voice_row["attribute"]) == ("female", "gender")
            assert voice_row["confidence"] == pytest.approx(0.9, abs=1e-6)
            assert '"child": 0.05' in voice_row["raw_output"]
    assert out.clips.equals(Dataset(extracted).clips)  # nothing written into the clips table
    assert out.stages["estimate_attributes"]["estimators"][1]["min_confidence"] == 0.8
    assert out.files("features") == [
        tmp_path / "est" / "features" / p.name for p in Dataset(extracted).files("features")
    ]
    assert summary.extra["instrument_audit"] and all("kept out" in v for v in summary.extra["instrument_audit"])


def test_a_missing_model_folder_is_one_line_naming_the_key(extracted, tmp_path):
    spec = {"name": "g", "kind": "face", "path": str(tmp_path / "nowhere"), "attribute": "gender"}
    params = load_params(write_params(tmp_path / "cfg", estimate_attributes={"estimators": [spec]}))
    with pytest.raises(ParamsError) as err:
        estimate_attributes.run(params, extracted, tmp_path / "est", "r1")
    assert err.value.problems == [
        f"estimate_attributes.estimators[0].path: {tmp_path / 'nowhere'}: no such model folder"
    ]
    assert not (tmp_path / "est").exists()


def test_the_default_run_estimates_nothing_and_writes_nothing(extracted, tmp_path):
    params_file = write_params(tmp_path / "cfg")
    assert load_params(params_file).estimate_attributes.estimators == ()
    assert refresh.estimate_attributes(str(params_file), "r1", str(extracted)) == str(extracted)
    assert not (load_params(params_file).run_dir("r1") / "estimate_attributes").exists()
    assert not Dataset(extracted).has("estimates")


def test_the_refresh_task_estimates_with_a_configured_estimator_and_the_run_report_says_how_it_did(
    extracted, tmp_path
):
    voice = tiny.constant_voice(tmp_path / "voice", says=0, probability=0.95)
    spec = {"name": "voice", "kind": "audio", "path": str(voice), "attribute": "gender"}
    params_file = write_params(tmp_path / "cfg", ray={"executor": "in-process"},
                               estimate_attributes={"estimators": [spec]})  # fmt: skip
    out = refresh.estimate_attributes(str(params_file), "r1", str(extracted))
    assert out.endswith("estimate_attributes") and Dataset(out).has("estimates")
    assert refresh.previous(load_params(params_file), "estimate_attributes", tmp_path / "elsewhere") is not None
    rep = refresh.report(str(params_file), "r1")
    assert rep["estimation"]["n_rows"] == Dataset(out).clips.num_rows
    text = (load_params(params_file).run_dir("r1") / "report.md").read_text()
    assert "- estimates: " in text and "instrument audit of voice@" in text and "kept out of the bias tables" in text
