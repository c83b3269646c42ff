"""End to end on generated clips: RAVDESS-layout actors whose faces are lit by gender (gender derived from the actor
number) and footage with and without a gender sidecar; tiny real classifiers run through the estimate_attributes
stage, the gate audits them as instruments, and only the one that passes fills in the footage's unknown genders.

Faces: the men (actors 1 and 3) are dark, actor 2 (a woman) is bright, actor 4 (a woman) is in between. The tiny face
models call a face female above a brightness threshold: `face-good` puts it below actor 4 (right for everyone),
`face-bad` above (wrong for half of the women); `voice` says male to every voice (wrong for every woman)."""

import pyarrow.parquet as pq
import pytest

from emopipe import schemas
from emopipe.config import SourceConfig, load_params
from emopipe.dataset import Dataset
from emopipe.estimators import audit
from emopipe.pipelines import estimate_attributes, extract_features, ingest, probe_clips
from emopipe.quality import metrics
from emopipe.quality import validate as gate
from tests.conftest import write_params
from tests.estimators import media, tiny

DARK, BRIGHT, MEDIUM = 0.5, 1.0, 0.8
FOOTAGE = {
    "annotated_male_bright": (BRIGHT, {"gender": "male", "emotions": ["happy"]}),  # face-good will say female
    "annotated_female": (BRIGHT, {"gender": "Female", "emotions": ["angry"]}),
    "unknown_bright_1": (BRIGHT, {"emotions": ["happy"]}),
    "unknown_bright_2": (BRIGHT, {"emotions": ["sad"]}),
    "unknown_dark_1": (DARK, {"emotions": ["angry"]}),
    "unknown_dark_2": (DARK, {"emotions": ["happy"]}),
    "no_sidecar_dark": (DARK, None),
}


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lit")
    media.ravdess_faces(tmp / "ravdess", {1: DARK, 2: BRIGHT, 3: DARK, 4: MEDIUM})
    media.footage_faces(tmp / "footage", FOOTAGE)
    sources = [SourceConfig(corpus="ravdess", root=tmp / "ravdess"),
               SourceConfig(corpus="footage", root=tmp / "footage", license="CC BY 4.0, test clips")]  # fmt: skip
    ingest.run_sources(sources, tmp / "ingest", "r1")
    params = load_params(write_params(tmp / "cfg", ray={"executor": "in-process"},
                                      extract_features={"n_frames": 4, "frame_size": 96}))  # fmt: skip
    probe_clips.run(params, tmp / "ingest", tmp / "probe", "r1")
    extract_features.run(params, tmp / "probe", tmp / "extract", "r1")
    return tmp


def _params(tmp, estimators):
    return load_params(
        write_params(
            tmp / "cfg-estimate",
            ray={"executor": "in-process"},
            estimate_attributes={"estimators": estimators},
            validate={"min_estimator_group_count": 8, "bias_attributes": ["gender"]},
        )
    )


def test_only_the_estimator_that_passes_its_instrument_audit_reaches_the_bias_tables(extracted, tmp_path):
    good = tiny.brightness_face(tmp_path / "face-good", threshold=0.36)
    bad = tiny.brightness_face(tmp_path / "face-bad", threshold=0.48)
    voice = tiny.constant_voice(tmp_path / "voice", says=0, probability=0.999)
    face_map = {"Male": "male", "Female": "female"}
    params = _params(tmp_path, [
        {"name": "face-good", "kind": "face", "path": str(good), "attribute": "gender", "label_map": face_map},
        {"name": "face-bad", "kind": "face", "path": str(bad), "attribute": "gender", "label_map": face_map},
        {"name": "voice", "kind": "audio", "path": str(voice), "attribute": "gender"},  # class names as words
    ])  # fmt: skip
    summary = estimate_attributes.run(params, extracted / "extract", tmp_path / "estimate", "r1")
    ds = Dataset(tmp_path / "estimate")
    clips = ds.clips
    assert summary.n_rows == summary.n_processed == 3 * clips.num_rows and summary.n_errors == 0
    estimates = ds.table("estimates").to_pylist()
    by = {(r["clip_id"], r["estimator"].split("@")[0]): r for r in estimates}
    for clip in clips.to_pylist():
        row = by[clip["clip_id"], "face-good"]
        assert row["value"] in {"female", "male"} and row["confidence"] > 0.8 and row["kind"] == "face", row
        assert by[clip["clip_id"], "voice"]["value"] == "male"
    assert by["footage:annotated_male_bright.mp4", "face-good"]["value"] == "female"  # disagrees with the sidecar
    assert clips.equals(Dataset(extracted / "extract").clips)  # the clips table stays as the corpus gave it

    result = gate.run(params, ds, tmp_path / "validate", "r1")
    assert result.success, result.blocking_failures  # an estimator kept out is a warning, not a refused dataset
    validated = Dataset(tmp_path / "validate")
    reports = tmp_path / "validate" / "reports"
    table = pq.read_table(reports / "instrument_audit.parquet")
    verdicts = {r["estimator"].split("@")[0]: r for r in table.to_pylist() if r["truth_group"] == r["corpus"] == "ALL"}
    groups = {(r["estimator"].split("@")[0], r["truth_group"]): r for r in table.to_pylist() if r["corpus"] == "ALL"}
    # face-good: right for every group where gender is known (RAVDESS derived, footage annotated) but one clip
    assert verdicts["face-good"]["trusted"] and verdicts["face-good"]["truth_sources"] == "annotated,derived"
    assert groups["face-good", "male"]["n_correct"] == groups["face-good", "male"]["n_answered"] - 1
    # face-bad: wrong for actor 4 (half the women): the female group is flagged and the estimator kept out
    assert groups["face-bad", "female"]["error_rate"] == pytest.approx(8 / 17) and not groups["face-bad", "female"][
        "passed"]  # fmt: skip
    assert groups["face-bad", "male"]["passed"] and not verdicts["face-bad"]["trusted"]
    assert "for true female" in verdicts["face-bad"]["verdict"]
    # voice: says male to everyone: wrong for every woman
    assert groups["voice", "female"]["error_rate"] == 1.0 and not verdicts["voice"]["trusted"]
    assert any("voice@" in w and "failed its instrument audit" in w for w in result.warnings)
    assert any("face-bad@" in w and "failed its instrument audit" in w for w in result.warnings)

    # only face-good's estimates fill the footage genders the sidecars leave unknown; annotated ones are kept
    joined, _ = metrics.audit_clips(validated, params.validate)
    gender = {r["clip_id"]: (r["gender"], r["gender_source"]) for r in joined.to_pylist()}
    assert gender["footage:annotated_male_bright.mp4"] == ("male", "annotated")  # never replaced
    assert gender["footage:annotated_female.mp4"] == ("female", "annotated")
    assert gender["footage:unknown_bright_1.mp4"] == ("female", "estimated")  # face-good, not voice's 0.999 male
    assert gender["footage:unknown_dark_1.mp4"] == ("male", "estimated")
    assert {v for k, v in gender.items() if k.startswith("ravdess:")} <= {("male", "derived"), ("female", "derived")}
    coverage = {r["corpus"]: r for r in pq.read_table(reports / "attribute_coverage.parquet").to_pylist()}
    assert coverage["footage"]["n_estimated"] == 5 and coverage["footage"]["n_given"] == 2
    assert schemas.as_dict(coverage["footage"]["estimated_groups"]) == {"female": 2, "male": 3}
    assert [e.split("@")[0] for e in coverage["footage"]["estimators_kept_out"]] == ["face-bad", "voice"]
    dependence = {(r["corpus"], r["attribute"]): r for r in pq.read_table(reports / "label_dependence.parquet")
                  .to_pylist()}  # fmt: skip
    footage = dependence["footage", "gender"]
    assert footage["attribute_sources"] == "annotated,estimated" and footage["n_clips"] == 6
    assert dependence["ravdess", "gender"]["attribute_sources"] == "derived"
    assert Dataset(tmp_path / "validate").clips.equals(clips)

    html = (reports / "bias_report.html").read_text()
    assert 'id="instrument-audit"' in html and "kept out of the bias tables" in html
    assert html.count('data-estimator="') == 3 and "footage: gender (estimated)" in html
    sheet = (reports / "datasheet.md").read_text()
    assert "## Estimated attributes" in sheet and "| gender | face-good |" in sheet
    assert "**estimated demographics:** face-good@" in sheet and "**estimator kept out:** voice@" in sheet
    assert "GDPR Article 9" in sheet
    facts = audit.rai_facts_of(validated)
    assert [(f["estimator"], f["used_in_bias_audit"]) for f in facts] == [
        ("face-bad", False), ("face-good", True), ("voice", False)]  # fmt: skip
    assert facts[1]["used"]["footage"]["n_estimated"] == 5 and facts[1]["checked_on"] == ["footage", "ravdess"]


def test_a_rerun_reuses_every_estimate_and_a_new_label_map_reestimates_only_that_estimator(extracted, tmp_path):
    voice = tiny.constant_voice(tmp_path / "voice", says=1, probability=0.9)
    face = tiny.brightness_face(tmp_path / "face", threshold=0.36)
    specs = [{"name": "face", "kind": "face", "path": str(face), "attribute": "gender",
              "label_map": {"Male": "male", "Female": "female"}},
             {"name": "voice", "kind": "audio", "path": str(voice), "attribute": "gender"}]  # fmt: skip
    first = estimate_attributes.run(_params(tmp_path, specs), extracted / "extract", tmp_path / "est", "r1")
    again = estimate_attributes.run(_params(tmp_path, specs), extracted / "extract", tmp_path / "est", "r2")
    assert (again.n_processed, again.n_reused, again.executor) == (0, first.n_rows, "none")  # no model loaded
    specs[1]["label_map"] = {"female": "female"}  # "male" now unmapped: an abstention, never a guess
    third = estimate_attributes.run(_params(tmp_path, specs), extracted / "extract", tmp_path / "est", "r3")
    n_clips = Dataset(extracted / "extract").clips.num_rows
    assert (third.n_processed, third.n_reused) == (n_clips, n_clips)
    voice_rows = [r for r in Dataset(tmp_path / "est").table("estimates").to_pylist() if r["kind"] == "audio"]
    assert {r["value"] for r in voice_rows} == {"female"} and {r["estimator"] for r in voice_rows} != {
        e for e in first.extra["estimators"] if e.startswith("voice@")}  # fmt: skip


@pytest.mark.slow
def test_a_published_version_carries_its_estimates_and_a_re_audit_by_tag_reads_them(extracted, tmp_path):
    from emopipe import audit as bias_audit
    from emopipe import versioning

    face = tiny.brightness_face(tmp_path / "face", threshold=0.36)
    spec = {"name": "face", "kind": "face", "path": str(face), "attribute": "gender",
            "label_map": {"Male": "male", "Female": "female"}}  # fmt: skip
    params = _params(tmp_path, [spec])
    estimate_attributes.run(params, extracted / "extract", tmp_path / "estimate", "r1")
    assert gate.run(params, tmp_path / "estimate", tmp_path / "validate", "r1").success
    res = versioning.publish(params, tmp_path / "validate", "r1", params_sha256=params.params_sha256)
    assert res.created
    published = Dataset(res.data_repo / "dataset")
    assert published.has("estimates") and published.digest == Dataset(tmp_path / "validate").digest
    sheet = (res.data_repo / "dataset" / "reports" / "datasheet.md").read_text()
    assert f"# Datasheet: emopipe bias audit {res.version}" in sheet and "| gender | face |" in sheet
    assert "face@" in (res.data_repo / "lineage.json").read_text()  # the estimator's version is in the lineage

    out = bias_audit.audit_version(params, res.version, tmp_path / "audit")
    assert out.success
    audited = pq.read_table(out.out_dir / "label_dependence.parquet").to_pylist()
    assert {(r["corpus"], r["attribute_sources"]) for r in audited} >= {("footage", "annotated,estimated")}
    assert 'id="instrument-audit"' in out.report.read_text() and "trusted" in out.report.read_text()
