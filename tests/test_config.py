"""params.yaml: strict validation with one line per problem, and the frozen copy each run reads."""

from __future__ import annotations

import pathlib
import pickle
import subprocess
import sys

import pydantic
import pytest
import yaml

from emopipe.config import (
    FROZEN_NAME,
    ExtractConfig,
    LabelConfig,
    LabelerSpec,
    Levels,
    Params,
    ParamsError,
    SourceConfig,
    ValidateConfig,
    freeze,
    load_params,
    parse_params,
    run_params,
)
from emopipe.pipelines.label_clips import select

EMOPIPE = str(pathlib.Path(sys.executable).parent / "emopipe")


def write(folder: pathlib.Path, text: str, name: str = "params.yaml") -> pathlib.Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder / name


def problems_of(monkeypatch, tmp_path, text: str) -> list[str]:
    """The lines of the ParamsError for `text`, read as `params.yaml` from the current folder."""
    write(tmp_path, text)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ParamsError) as err:
        load_params("params.yaml")
    assert str(err.value) == "\n".join(err.value.problems)
    return err.value.problems


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("extract_features: {batch_size: '64'}", "extract_features.batch_size: must be an integer, got '64'"),
        ("extract_features: {n_frames: true}", "extract_features.n_frames: must be an integer, got true"),
        ("extract_features: {n_frames: 2.5}", "extract_features.n_frames: must be an integer, got 2.5"),
        ("work_dir: [a, b]", "work_dir: must be a path (a non-empty string), got a list ['a', 'b']"),
        ("validate: {min_clips: ten}", "validate.min_clips: must be an integer, got 'ten'"),
        ("validate: {min_duration_s: true}", "validate.min_duration_s: must be a number, got true"),
        (
            "validate: {bias_attributes: gender}",
            "validate.bias_attributes: must be a list, got 'gender' (write [gender])",
        ),
        ("extract_features: {keep_frames: 'yes'}", "extract_features.keep_frames: must be true or false, got 'yes'"),
        ("probe_clips: {batch_size: -3}", "probe_clips.batch_size: must be >= 1, got -3"),
        ("label_clips: {num_workers: 0}", "label_clips.num_workers: must be >= 1, got 0"),
        ("extract_features: {num_gpus: -1}", "extract_features.num_gpus: must be 'auto' or a number >= 0, got -1"),
        (
            "extract_features: {num_gpus: many}",
            "extract_features.num_gpus: must be 'auto' or a number >= 0, got 'many'",
        ),
        ("extract_features: {jpeg_quality: 101}", "extract_features.jpeg_quality: must be <= 100, got 101"),
        (
            "extract_features: {face_detector: dlib}",
            "extract_features.face_detector: must be one of 'mtcnn', 'mtcnn_full' or 'haar'",
        ),
        ("extract_features: {bacth_size: 4}", "extract_features.bacth_size: unknown key; did you mean 'batch_size'?"),
        ("ingest: {demo: {actors: 30}}", "ingest.demo.actors: must be <= 24, got 30"),
        ("ingest: {demo: {width: 161}}", "ingest.demo.width: must be even (H.264 yuv420p), got 161"),
        ("ingest: {demo: {seconds: .nan}}", "ingest.demo.seconds: must be a finite number, got nan"),
        ("ingest: {corpus: imdb}", "ingest.corpus: must be one of 'ravdess', 'dfew', 'mafw' or 'footage', got 'imdb'"),
        ("ray: {local_below_rows: -1}", "ray.local_below_rows: must be >= 0, got -1"),
        ("ray: {executor: sometimes}", "ray.executor"),
        ("publish: {tag_prefix: 'v 1'}", "publish.tag_prefix: must be a non-empty word, got 'v 1'"),
        ("label_clips: {labelers: [{name: 'a@b', kind: fer}], fusion_labeler: 'a@b'}", "must be a non-empty name"),
        ("label_clips: {labelers: {name: fer, kind: fer}}", "label_clips.labelers: must be a list, got a mapping"),
        ("label_clips: {labelers: []}", "label_clips.labelers: must list at least 1, got a list []"),
        ("label_clips: {labelers: [{name: m, kind: fer, label_map: {1: anger}}], fusion_labeler: m}", "a key must be"),
        ("extract_features: 8", "extract_features: must be a mapping, got 8"),
        # Thresholds with two levels: exactly `blocking` and `warning`, in the order the check needs.
        (
            "validate: {min_class_share: {blocking: 0.01}}",
            "validate.min_class_share.warning: is required; a threshold needs both `blocking` and `warning`",
        ),
        (
            "validate: {min_class_share: {blocking: 0.01, warning: 0.05, critical: 0}}",
            "validate.min_class_share.critical: unknown key; a threshold has exactly `blocking` and `warning`",
        ),
        (
            "validate: {min_class_share: {blocking: 0.05, warning: 0.01}}",
            "validate.min_class_share: need 0 <= blocking <= warning <= 1, got blocking 0.05, warning 0.01",
        ),
        (
            "validate: {max_class_gap: {blocking: 0.1, warning: 0.15}}",
            "validate.max_class_gap: need 0 <= warning <= blocking <= 1, got blocking 0.1, warning 0.15",
        ),
        (
            "validate: {max_imbalance_ratio: {blocking: 5, warning: 10}}",
            "validate.max_imbalance_ratio: need 1 <= warning <= blocking, got blocking 5, warning 10",
        ),
        ("validate: {min_recall_ratio: 0.8}", "validate.min_recall_ratio: must be a mapping, got 0.8"),
        # bias attributes name demographic columns of the clips table, or their intersections.
        (
            "validate: {bias_attributes: [gender, ethnicity]}",
            "validate.bias_attributes: 'ethnicity': not a demographic",
        ),
        ("validate: {bias_attributes: [gender*race]}", "validate.bias_attributes: 'race' (in 'gender*race'): not a"),
        (
            "validate: {bias_attributes: [label]}",
            "'label': not a demographic column of the clips table (known: gender",
        ),
        ("validate: {bias_attributes: [gender, gender]}", "validate.bias_attributes: each attribute once"),
        (
            "validate: {bias_attributes: [gender*gender]}",
            "'gender*gender': an intersection is a pair of two different",
        ),
        (
            "validate: {bias_attributes: [gender, gender*accent]}",
            "validate.bias_attributes: 'gender*accent' is audited when both its columns are listed; add accent",
        ),
        # Checks across keys of a section.
        ("ingest: {corpus: dfew}", "ingest.root: only the ravdess demo can be generated; set ingest.root for dfew"),
        ("ingest: {sources: [{corpus: footage, root: /d}]}", "ingest.sources[0].license: a footage source needs"),
        ("ingest: {sources: [{corpus: dfew}]}", "ingest.sources[0].root: is required"),
        (
            "ingest: {root: /a, sources: [{corpus: dfew, root: /d}]}",
            "ingest: give either `root` or `sources`, not both",
        ),
        (
            "label_clips: {fusion_labeler: vmae}",
            "label_clips.fusion_labeler: 'vmae' is not one of the labelers ['fer']",
        ),
        ("label_clips: {labelers: [{name: v, kind: hf_video}], fusion_labeler: v}", "labelers[0].path: kind hf_video"),
        ("validate: {min_fps: 50, max_fps: 30}", "validate.min_fps: must be below max_fps (30)"),
        ("ray: {dashboard_url: 'head:8265'}", "ray.dashboard_url: must be an http(s):// URL such as http://head:8265"),
        (
            "publish: {remote: 's3://b/p', remote_options: {secret_access_key: x}}",
            "remote_options.secret_access_key is a",
        ),
        ("publish: {remote: 's3://AKIA:abc@b/p'}", "publish.remote must not contain credentials"),
        ("bogus: 1", "bogus: unknown section (known: work_dir, ingest, probe_clips, extract_features, label_clips"),
        ("source: /etc/params.yaml", "source: unknown section"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_file_and_key(monkeypatch, tmp_path, text, line):
    lines = problems_of(monkeypatch, tmp_path, text)
    assert len(lines) == 1, lines
    assert lines[0].startswith("params.yaml: ") and line in lines[0], lines[0]


def test_every_problem_of_the_file_is_reported_at_once(monkeypatch, tmp_path):
    text = """
work_dir: [a, b]
extract_features: {batch_size: "64", n_frames: true, face_detector: dlib}
probe_clips: {num_workers: -1}
validate:
  min_clips: ten
  bias_attributes: gender
  max_cramers_v: {blocking: 0.2}
ray: {adress: head:6379}
extra_section: {}
"""
    lines = problems_of(monkeypatch, tmp_path, text)
    keys = [line.split(": ")[1] for line in lines]
    assert keys == [
        "work_dir",
        "probe_clips.num_workers",
        "extract_features.batch_size",
        "extract_features.n_frames",
        "extract_features.face_detector",
        "validate.min_clips",
        "validate.bias_attributes",
        "validate.max_cramers_v.warning",
        "ray.adress",
        "extra_section",
    ]
    assert all(line.startswith("params.yaml: ") for line in lines)


def test_a_yaml_syntax_error_is_one_line_with_line_and_column(monkeypatch, tmp_path):
    lines = problems_of(monkeypatch, tmp_path, "work_dir: work\nextract_features:\n  batch_size: [8\n  n_frames: 4\n")
    assert lines == ["params.yaml:4:11: invalid YAML: expected ',' or ']', but got ':'"]


def test_a_key_given_twice_is_refused_not_silently_overwritten(monkeypatch, tmp_path):
    lines = problems_of(monkeypatch, tmp_path, "probe_clips:\n  batch_size: 8\n  batch_size: 64\n")
    assert lines == ["params.yaml:3:3: 'batch_size' is given twice in one mapping"]


def test_missing_unreadable_non_mapping_and_empty_files(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ParamsError, match=r"^nope\.yaml: params file not found$"):
        load_params("nope.yaml")
    with pytest.raises(ParamsError, match="is a folder"):
        load_params(tmp_path)
    write(tmp_path, "- ingest\n- validate\n")
    with pytest.raises(ParamsError, match=r"^params\.yaml: must be a mapping of sections .*got a list"):
        load_params("params.yaml")
    write(tmp_path, "# nothing set yet\n")
    params = load_params("params.yaml")
    assert params == parse_params(None, tmp_path) and params.extract_features == ExtractConfig()
    assert params.work_dir == tmp_path / "work" and params.publish.remote == str(tmp_path / "work" / "dvc-remote")


def test_empty_sections_and_empty_thresholds_keep_their_defaults(tmp_path):
    text = "ingest:\nprobe_clips:\nlabel_clips: {labelers: null}\nvalidate: {min_class_share: null}\n"
    params = load_params(write(tmp_path, text))
    assert params.ingest.demo.actors == 24 and params.probe_clips.batch_size == 64
    assert [s.name for s in params.label_clips.labelers] == ["fer"]
    assert params.validate.min_class_share == Levels(blocking=0.01, warning=0.05)
    assert load_params(write(tmp_path, "validate: {bias_attributes: null}")).validate.bias_attributes == ()


def test_relative_paths_are_resolved_against_the_files_folder(monkeypatch, tmp_path):
    text = """
work_dir: out
ingest: {sources: [{corpus: dfew, root: data/DFEW}]}
extract_features: {face_weights: ~/weights}
label_clips: {labelers: [{name: v, kind: hf_video, path: models/v}], fusion_labeler: v}
publish: {data_repo: ../repo}
"""
    path = write(tmp_path / "cfg", text)
    monkeypatch.chdir(tmp_path)
    params = load_params(pathlib.Path("cfg") / "params.yaml")
    assert params.work_dir == tmp_path / "cfg" / "out"
    assert params.ingest.sources[0].root == tmp_path / "cfg" / "data" / "DFEW"
    assert params.extract_features.face_weights == str(pathlib.Path("~/weights").expanduser())
    assert params.label_clips.labelers[0].path == str(tmp_path / "cfg" / "models" / "v")
    assert params.publish.data_repo == tmp_path / "repo"
    assert params.publish.remote == str(tmp_path / "cfg" / "work" / "dvc-remote")
    assert params.source == path
    assert params.to_dict()["work_dir"] == str(tmp_path / "cfg" / "out")


def test_a_config_built_in_code_is_checked_and_frozen():
    with pytest.raises(ParamsError) as err:
        ExtractConfig(batch_size=0, n_frames="16")
    assert err.value.problems == [
        "extract_features.batch_size: must be >= 1, got 0",
        "extract_features.n_frames: must be an integer, got '16'",
    ]
    with pytest.raises(ParamsError, match=r"^ingest.sources\[\].license: a footage source needs a `license`"):
        SourceConfig("footage", "/x")  # positional, as the dataclass took it
    with pytest.raises(ParamsError, match="validate.bias_attributes: 'age': not a demographic column"):
        ValidateConfig(bias_attributes=("age",))
    cfg = ExtractConfig(batch_size=4)
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        cfg.batch_size = 8
    assert cfg.model_copy(update={"batch_size": 8}).batch_size == 8 and cfg.batch_size == 4
    assert LabelConfig(labelers=[LabelerSpec(name="fer", kind="fer")]).labelers[0].name == "fer"  # a list is a tuple


def test_errors_survive_pickling_with_their_lines():
    err = ParamsError(["a.b: must be an integer, got 'x'", "c: unknown section"])
    again = pickle.loads(pickle.dumps(err))
    assert again.problems == err.problems and str(again) == str(err)
    params = Params(work_dir=pathlib.Path("/w"))
    assert pickle.loads(pickle.dumps(params)) == params


def test_selecting_labelers_copies_the_config():
    specs = [LabelerSpec(name="fer", kind="fer"), LabelerSpec(name="v", kind="hf_video", path="/m")]
    cfg = LabelConfig(labelers=specs, batch_size=4)
    chosen = select(cfg, ["v"])
    assert [s.name for s in chosen.labelers] == ["v"] and chosen.fusion_labeler == "v" and chosen.batch_size == 4


# ------------------------------------------------------------------------------------------------ freezing

PARAMS = """
work_dir: work
ingest:
  sources:
    - {corpus: footage, root: drops, license: "CC BY 4.0"}
extract_features: {n_frames: 8, num_gpus: 0.5, face_weights: weights}
label_clips:
  labelers:
    - {name: fer, kind: fer}
    - {name: vmae, kind: hf_video, path: models/vmae, label_map: {Happy: happiness}}
validate: {min_class_share: {blocking: 0.02, warning: 0.05}, bias_attributes: [gender, age_group, gender*age_group]}
ray: {address: "head:6379", runtime_env: {working_dir: ., env_vars: {A: b}}, jobs_dir: ray_jobs}
publish: {remote: "s3://bucket/emopipe", remote_options: {region: eu-west-1}}
"""


def test_freeze_writes_every_value_and_reads_back_equal(tmp_path):
    params = load_params(write(tmp_path / "cfg", PARAMS))
    frozen = freeze(params, tmp_path / "run")
    assert frozen.path == tmp_path / "run" / FROZEN_NAME and frozen.sha256 == params.params_sha256
    text = frozen.path.read_text(encoding="utf-8")
    assert text.startswith("# The parameters of this run, frozen from ") and frozen.sha256 in text.splitlines()[3]
    written = yaml.safe_load(text)
    assert list(written) == list(Params.model_fields)[:-1]  # every section, in the model's order, no `source`
    assert written["extract_features"]["min_face_size"] == 20  # defaults are spelled out too
    assert written["label_clips"]["ray_address"] == "head:6379"  # the stage joins the ray: cluster
    assert written["ingest"]["sources"][0]["root"] == str(tmp_path / "cfg" / "drops")
    assert written["ray"]["runtime_env"]["working_dir"] == str(tmp_path / "cfg")
    again = load_params(frozen.path)
    assert again == params and again.to_dict() == params.to_dict() and again.source == frozen.path
    assert again.validate.bias_attributes == ("gender", "age_group", "gender*age_group")
    # Freezing the same parameters elsewhere writes the same bytes.
    assert freeze(params, tmp_path / "run2").path.read_text(encoding="utf-8") == text


def test_the_hash_is_stable_across_loads_and_changes_with_a_setting(tmp_path):
    path = write(tmp_path, PARAMS)
    first, second = load_params(path), load_params(path)
    assert first is not second and first.params_sha256 == second.params_sha256
    assert len(first.params_sha256) == 64 and hash(first) == hash(second)
    changed = write(tmp_path, PARAMS.replace("n_frames: 8", "n_frames: 9"))
    assert load_params(changed).params_sha256 != first.params_sha256
    same_but_reordered = write(
        tmp_path, PARAMS.replace("{n_frames: 8, num_gpus: 0.5,", "{num_gpus: 0.5, n_frames: 8,")
    )
    assert load_params(same_but_reordered).params_sha256 == first.params_sha256


def test_a_run_keeps_the_params_it_was_frozen_with(tmp_path):
    path = write(tmp_path / "cfg", PARAMS)
    run = tmp_path / "work" / "runs" / "r1"
    assert not (run / FROZEN_NAME).exists()
    started = run_params(path, run)
    assert (run / FROZEN_NAME).is_file() and started == load_params(path)
    write(tmp_path / "cfg", PARAMS.replace("n_frames: 8", "n_frames: 32"))  # edited while the run goes on
    assert run_params(path, run) == started and run_params(path, run).extract_features.n_frames == 8
    assert run_params(path, tmp_path / "work" / "runs" / "r2").extract_features.n_frames == 32  # a new run
    with pytest.raises(ParamsError, match="already frozen with other parameters"):
        freeze(load_params(path), run)
    assert freeze(started, run).sha256 == started.params_sha256  # the same parameters again: nothing changes


def test_parse_params_names_no_file_unless_told(tmp_path):
    with pytest.raises(ParamsError, match=r"^params: probe_clips.batch_size: must be >= 1, got 0$"):
        parse_params({"probe_clips": {"batch_size": 0}}, tmp_path)
    assert parse_params(None, tmp_path).work_dir == tmp_path / "work"


# ----------------------------------------------------------------------------------------------------- CLI


def test_the_cli_prints_every_problem_on_its_own_line_and_exits_2(tmp_path):
    write(tmp_path, "extract_features: {batch_size: '64', n_frames: true}\nvalidate: {min_clips: ten}\nbogus: 1\n")
    run = subprocess.run(
        [EMOPIPE, "-q", "--params", "params.yaml", "versions"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert run.returncode == 2, run.stderr
    assert run.stderr.splitlines() == [
        "emopipe versions: params.yaml: extract_features.batch_size: must be an integer, got '64'",
        "emopipe versions: params.yaml: extract_features.n_frames: must be an integer, got true",
        "emopipe versions: params.yaml: validate.min_clips: must be an integer, got 'ten'",
        "emopipe versions: params.yaml: bogus: unknown section (known: work_dir, ingest, probe_clips, "
        "extract_features, label_clips, estimate_attributes, validate, publish, export, ray)",
    ]
    assert "Traceback" not in run.stderr and run.stdout == ""
