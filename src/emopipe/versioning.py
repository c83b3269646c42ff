"""Publish validated datasets as DVC-tracked, git-tagged versions in a data repository, and read them back.

The data repository is a plain git + DVC repo (created on first publish, location from params.yaml
`publish.data_repo`) whose `dataset/` folder is tracked by DVC and pushed to the configured remote,
with `lineage.json` committed beside it. A version is the tag `<prefix><n>`; it is made last, after the
data is pushed and the commit exists, so a version is either complete or absent.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import pathlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import emopipe
from emopipe import io, schemas
from emopipe.config import Params, PublishConfig
from emopipe.pipelines.stage_dir import StageDir
from emopipe.quality.validate import dataset_digest, features_extraction, label_tables, load_result

log = logging.getLogger(__name__)

DATASET_FILES = (
    "clips.parquet",
    "quarantine.parquet",
    "features.parquet",
    "labels.parquet",
    "agreement.parquet",
    "fused_labels.parquet",
    "validation.json",
    "reports",
)


class PublishRefused(RuntimeError):
    """The dataset must not be published (failed gate, changed since validation, ...)."""


class CommandFailed(RuntimeError):
    """A git or dvc command exited non-zero."""


@dataclass(frozen=True)
class PublishResult:
    """What publish did."""

    version: str
    created: bool
    message: str
    data_repo: pathlib.Path


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DVC_NO_ANALYTICS", "1")
    env.setdefault("GIT_TERMINAL_PROMPT", "0")
    return env


def _run(args: list[str], cwd: pathlib.Path) -> str:
    proc = subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True, check=False)
    if proc.returncode:
        raise CommandFailed(
            f"{' '.join(args)} failed in {cwd} ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}"
        )
    return proc.stdout


def git(repo: pathlib.Path, *args: str) -> str:
    return _run(["git", *args], repo)


def dvc(repo: pathlib.Path, *args: str) -> str:
    return _run([sys.executable, "-m", "dvc", *args], repo)


def ensure_data_repo(cfg: PublishConfig) -> pathlib.Path:
    """Create the data repository (git + DVC + default remote) if missing; keep its remote URL as configured."""
    repo = pathlib.Path(cfg.data_repo)
    if not (repo / ".dvc").is_dir():
        repo.mkdir(parents=True, exist_ok=True)
        if not (repo / ".git").exists():
            git(repo, "init", "-q", "-b", "main")
        git(repo, "config", "user.name", "emopipe")
        git(repo, "config", "user.email", "emopipe@localhost")
        dvc(repo, "init", "-q")
        dvc(repo, "config", "core.analytics", "false")
        dvc(repo, "remote", "add", "-d", "default", cfg.remote)
        (repo / "README.md").write_text(
            "# emopipe data repository\n\nEach tag is a published dataset version: `git checkout <tag> && dvc pull`.\n"
            "`lineage.json` says where it came from; `dataset/` is tracked by DVC.\n"
        )
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "Initialise emopipe data repository")
    elif dvc(repo, "remote", "list").split() != ["default", cfg.remote]:
        dvc(repo, "remote", "add", "-f", "-d", "default", cfg.remote)
    if "://" not in cfg.remote:
        pathlib.Path(cfg.remote).mkdir(parents=True, exist_ok=True)
    return repo


@contextlib.contextmanager
def repo_lock(repo: pathlib.Path) -> Iterator[None]:
    """One publisher at a time per data repository (blocks until the other finishes)."""
    path = repo.parent / f".{repo.name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def versions(repo: pathlib.Path, prefix: str) -> list[str]:
    """Published version tags, oldest first."""
    if not (repo / ".git").exists():
        return []
    tags = git(repo, "tag", "--list", f"{prefix}*").split()
    numbered = [(int(t[len(prefix) :]), t) for t in tags if t[len(prefix) :].isdigit()]
    return [t for _, t in sorted(numbered)]


def lineage(repo: pathlib.Path, tag: str) -> dict[str, Any]:
    """The lineage record committed with a version."""
    import json

    return json.loads(git(repo, "show", f"{tag}:lineage.json"))


def code_version() -> str:
    """Package version plus the git commit of the code, when it runs from a checkout."""
    root = pathlib.Path(emopipe.__file__).resolve().parents[2]
    try:
        sha = git(root, "rev-parse", "--short=12", "HEAD").strip()
        dirty = git(root, "status", "--porcelain", "--untracked-files=no").strip()
    except (CommandFailed, FileNotFoundError):
        return emopipe.__version__
    return f"{emopipe.__version__}+g{sha}{'.dirty' if dirty else ''}"


def _source_checksum(clips_sha: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(clips_sha)).encode()).hexdigest()


def publish(params: Params, validated_dir: pathlib.Path, run_id: str) -> PublishResult:
    """Publish a validated folder as the next version; no new version when the content equals the latest one."""
    folder = StageDir(pathlib.Path(validated_dir))
    gate = load_result(folder.path)
    if not gate.success:
        raise PublishRefused("the quality gate failed; nothing published.\n" + gate.summary())
    clips, quarantine = folder.clips(), folder.quarantine()
    extraction = features_extraction(folder.path)
    labelled = label_tables(folder.path)
    digest = dataset_digest(clips, quarantine, extraction, labelled)
    if digest != gate.dataset_digest:
        raise PublishRefused(
            f"{folder.path} changed after validation (digest {digest[:12]} != {gate.dataset_digest[:12]})"
        )
    cfg = params.publish
    repo = pathlib.Path(cfg.data_repo)
    with repo_lock(repo):
        ensure_data_repo(cfg)
        existing = versions(repo, cfg.tag_prefix)
        if existing and lineage(repo, existing[-1]).get("dataset_digest") == digest:
            msg = f"dataset unchanged since {existing[-1]} (digest {digest[:12]}); no new version created"
            log.info("%s", msg)
            return PublishResult(existing[-1], False, msg, repo)
        tag = f"{cfg.tag_prefix}{len(existing) + 1}"
        while tag in git(repo, "tag", "--list").split():  # a tag made outside emopipe: never overwrite it
            tag = f"{cfg.tag_prefix}{int(tag[len(cfg.tag_prefix) :]) + 1}"
        record = {
            "version": tag,
            "run_id": run_id,
            "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "code_version": code_version(),
            "dataset_digest": digest,
            "schemas": {
                t: schemas.load_schema(t).metadata[b"version"].decode() for t in ("clips", "quarantine", "features")
            },
            "source": {
                **folder.source(),
                "n_clips": clips.num_rows,
                "n_quarantined": quarantine.num_rows,
                "media_sha256_digest": _source_checksum(clips["sha256"].to_pylist()),
            },
            "stages": {
                "extractor_versions": []
                if extraction is None
                else sorted(set(extraction["extractor_version"].to_pylist())),
                "labelers": sorted(set(labelled["labels"]["labeler"].to_pylist())) if "labels" in labelled else [],
            },
            "gate": {"success": gate.success, "warnings": gate.warnings, "suites": gate.suites},
            "params": params.to_dict(),
        }
        head = git(repo, "rev-parse", "HEAD").strip()
        try:
            _stage_dataset(folder.path, repo / "dataset")
            io.write_json(repo / "lineage.json", record)
            _stage_metrics(folder.path, repo)
            dvc(repo, "add", "-q", "dataset")
            dvc(repo, "push", "-q", "-r", "default")
            git(repo, "add", "dataset.dvc", ".gitignore", "lineage.json", "dvc.yaml", "metrics")
            git(repo, "commit", "-q", "-m", f"{tag}: {clips.num_rows} clips from run {run_id}")
            git(repo, "tag", "-a", tag, "-m", f"emopipe dataset {tag} (digest {digest[:12]}, run {run_id})")
        except BaseException:
            log.error("publish of %s failed; restoring the data repository to %s", tag, head[:12])
            _rollback(repo, head)
            raise
    msg = f"published {tag}: {clips.num_rows} clips, {quarantine.num_rows} quarantined, pushed to {cfg.remote}"
    log.info("%s", msg)
    return PublishResult(tag, True, msg, repo)


def _stage_dataset(src: pathlib.Path, dst: pathlib.Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    for name in DATASET_FILES:
        path = src / name
        if path.is_dir():
            shutil.copytree(path, dst / name)
        elif path.is_file():
            shutil.copy2(path, dst / name)


METRICS_FILES = ("balance.json", "bias.json", "agreement.json")


def _stage_metrics(src: pathlib.Path, repo: pathlib.Path) -> None:
    """Copy the version's metrics into git (metrics/*.json, declared in dvc.yaml): `dvc metrics diff v1 v2`."""
    metrics = repo / "metrics"
    if metrics.exists():
        shutil.rmtree(metrics)
    metrics.mkdir()
    names = []
    for name in METRICS_FILES:
        if (src / "reports" / name).is_file():
            shutil.copy2(src / "reports" / name, metrics / name)
            names.append(f"metrics/{name}")
    (metrics / ".gitkeep").touch()
    body = "# Metrics of the published version, compared across tags with `dvc metrics diff v1 v2`.\nmetrics:\n"
    (repo / "dvc.yaml").write_text(body + "".join(f"  - {n}\n" for n in names))


def _rollback(repo: pathlib.Path, head: str) -> None:
    with contextlib.suppress(CommandFailed):
        git(repo, "reset", "-q", "--hard", head)
    with contextlib.suppress(CommandFailed):
        dvc(repo, "checkout", "-q", "--force")


def checkout(params: Params, tag: str, dest: pathlib.Path) -> pathlib.Path:
    """Materialise a published version into `dest`: a fresh clone of the data repo at `tag`, data pulled by DVC."""
    repo = pathlib.Path(params.publish.data_repo)
    if tag not in versions(repo, params.publish.tag_prefix):
        raise ValueError(f"no published version {tag!r} in {repo}")
    dest = pathlib.Path(dest)
    _run(["git", "clone", "-q", str(repo.resolve()), str(dest)], repo.parent)
    git(dest, "-c", "advice.detachedHead=false", "checkout", "-q", tag)
    dvc(dest, "pull", "-q")
    return dest
