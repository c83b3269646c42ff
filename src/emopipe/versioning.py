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
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

import emopipe
from emopipe import forget, io, remotes, schemas
from emopipe.config import Params, PublishConfig
from emopipe.dataset import Dataset, DatasetWriter

log = logging.getLogger(__name__)

ROW_LINEAGE = schemas.load_schema("row_lineage")
TRAILER = "Emopipe-Version"  # the last line of every commit publish makes: `Emopipe-Version: v3`


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
    """The environment of git/dvc subprocesses: ours, plus remote credentials inside `remotes.credentials()`."""
    env = remotes.subprocess_env(os.environ)
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
    """Create the data repository (git + DVC + default remote) if missing; keep its remote as configured.

    The remote's URL and non-secret options (`publish.remote_options`) are committed in `.dvc/config`, so a clone
    pulls from the right place; a change of remote is committed as its own commit. Credentials never go there.
    """
    repo = pathlib.Path(cfg.data_repo)
    if not (repo / ".dvc").is_dir():
        repo.mkdir(parents=True, exist_ok=True)
        if not (repo / ".git").exists():
            git(repo, "init", "-q", "-b", "main")
        git(repo, "config", "user.name", "emopipe")
        git(repo, "config", "user.email", "emopipe@localhost")
        dvc(repo, "init", "-q")
        dvc(repo, "config", "core.analytics", "false")
        remotes.configure(repo, cfg.remote, cfg.remote_options, dvc)
        (repo / "README.md").write_text(
            "# emopipe data repository\n\nEach tag is a published dataset version: `git checkout <tag> && dvc pull`.\n"
            "`lineage.json` says where it came from; `dataset/` is tracked by DVC.\n"
        )
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "Initialise emopipe data repository")
    elif remotes.configure(repo, cfg.remote, cfg.remote_options, dvc):
        git(repo, "add", ".dvc/config")
        if git(repo, "diff", "--cached", "--name-only", "--", ".dvc/config").strip():
            git(repo, "commit", "-q", "-m", f"Data remote: {cfg.remote}", "--", ".dvc/config")
    if remotes.is_local(cfg.remote):
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


def failpoint(name: str) -> None:
    """Fault injection for the crash tests: die by SIGKILL here when EMOPIPE_FAILPOINT names this point."""
    if os.environ.get("EMOPIPE_FAILPOINT") == name:
        log.warning("failpoint %s: killing this process", name)
        os.kill(os.getpid(), signal.SIGKILL)


def recover(repo: pathlib.Path, prefix: str) -> str | None:
    """Undo what a publisher killed mid-way left behind (called under the repo lock, before publishing).

    A version only exists once its tag does. A publish commit without its tag, or staged files that never got
    committed, are the remains of a killed publisher: the repository goes back to the last tagged version (or
    the initial commit). Commits that publish did not make are left alone. Returns the commit undone, if any.
    """
    head = git(repo, "rev-parse", "HEAD").strip()
    dirty = git(repo, "status", "--porcelain", "--untracked-files=no").strip()
    tagged = git(repo, "tag", "--points-at", head, "--list", f"{prefix}*").split()
    message = git(repo, "log", "-1", "--format=%B", head)
    unfinished = not tagged and f"{TRAILER}:" in message
    if not unfinished and not dirty:
        return None
    target = git(repo, "rev-parse", "HEAD~1").strip() if unfinished else head
    log.warning(
        "data repository %s: found an unfinished publish (%s); rolling back to %s",
        repo,
        message.splitlines()[0] if unfinished else "uncommitted files",
        target[:12],
    )
    _rollback(repo, target)
    return head if unfinished else None


def published_forget_register(params: Params) -> dict[str, dict[str, Any]]:
    """The forget register committed with the latest version (empty before the first)."""
    repo = pathlib.Path(params.publish.data_repo)
    tags = versions(repo, params.publish.tag_prefix)
    if not tags:
        return {}
    try:
        return forget.entries(_show_json(repo, tags[-1], forget.FILE))
    except CommandFailed:  # versions published before the register existed
        return {}


def versions(repo: pathlib.Path, prefix: str) -> list[str]:
    """Published version tags, oldest first."""
    if not (repo / ".git").exists():
        return []
    tags = git(repo, "tag", "--list", f"{prefix}*").split()
    numbered = [(int(t[len(prefix) :]), t) for t in tags if t[len(prefix) :].isdigit()]
    return [t for _, t in sorted(numbered)]


def _show_json(repo: pathlib.Path, rev: str, path: str) -> Any:
    """A JSON file as committed at `rev` in the data repository."""
    import json

    return json.loads(git(repo, "show", f"{rev}:{path}"))


def lineage(repo: pathlib.Path, tag: str) -> dict[str, Any]:
    """The lineage record committed with a version."""
    return _show_json(repo, tag, "lineage.json")


def dataset_size(repo: pathlib.Path, tag: str) -> tuple[int, int]:
    """(bytes, files) of a version's dataset/ folder, from its committed .dvc file (no pull needed)."""
    import yaml

    out = yaml.safe_load(git(repo, "show", f"{tag}:dataset.dvc"))["outs"][0]
    return int(out.get("size", 0)), int(out.get("nfiles", 0))


def read_table_at(repo: pathlib.Path, tag: str, name: str, columns: list[str] | None = None) -> pa.Table:
    """One table of a published version without a checkout: `dvc get` (local cache, else the remote, with the
    same credentials as publish). FileNotFoundError when the version has no such table."""
    import tempfile

    import pyarrow.parquet as pq

    stem = name.removesuffix(".parquet")
    with tempfile.TemporaryDirectory(prefix="emopipe-get-") as tmp:
        out = pathlib.Path(tmp) / stem
        errors = []
        for path in (f"dataset/{stem}", f"dataset/{stem}.parquet"):  # shards folder (layout 2), single file (1)
            try:
                dvc(repo, "get", str(pathlib.Path(repo).resolve()), path, "--rev", tag, "-o", str(out))
            except CommandFailed as err:
                errors.append(str(err).splitlines()[0])
                continue
            return pq.read_table(out, columns=columns)
        raise FileNotFoundError(f"{tag}: dataset/{stem}: {'; '.join(errors)}")


def versions_with_subject(repo: pathlib.Path, prefix: str, subject_id: str) -> dict[str, int]:
    """tag -> number of clips of `subject_id` in that version, for the versions that hold any."""
    import pyarrow.compute as pc

    found = {}
    for tag in versions(repo, prefix):
        n = pc.sum(pc.equal(read_table_at(repo, tag, "clips", ["subject_id"])["subject_id"], subject_id))
        if n.as_py():
            found[tag] = n.as_py()
    return found


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


def publish(
    params: Params, validated_dir: pathlib.Path, run_id: str, *, params_sha256: str | None = None
) -> PublishResult:
    """Publish a validated dataset folder as the next version; no new version when the content equals the latest.

    Args:
        params: the run's configuration.
        validated_dir: the gate's output folder (or a Dataset of it, already open): each table is read once.
        run_id: the run (recorded in lineage).
        params_sha256: the hash of the run's frozen parameters (recorded in lineage).
    """
    ds = validated_dir if isinstance(validated_dir, Dataset) else Dataset.open(validated_dir)
    gate = ds.gate
    if gate is None:
        raise PublishRefused(f"{ds.path} was never validated: run the gate (emopipe validate) first")
    if not gate.success:
        raise PublishRefused("the quality gate failed; nothing published.\n" + gate.summary())
    # The very files the gate read, untouched (same names, sizes, times, inodes): its digest of their rows holds.
    # Anything else is hashed again, row by row, and must match.
    same_files = gate.files_fingerprint is not None and ds.files_fingerprint == gate.files_fingerprint
    digest = gate.dataset_digest if same_files else ds.digest
    if digest != gate.dataset_digest:
        raise PublishRefused(
            f"{ds.path} changed after validation (digest {digest[:12]} != {gate.dataset_digest[:12]})"
        )
    clips, quarantine = ds.clips, ds.quarantine
    extraction, labels = ds.extraction, ds.labels
    cfg = params.publish
    repo = pathlib.Path(cfg.data_repo)
    with repo_lock(repo), remotes.credentials(cfg.remote, cfg.aws_conn_id):
        ensure_data_repo(cfg)
        recover(repo, cfg.tag_prefix)
        register = forget.register(params.work_dir, published_forget_register(params))
        if leaked := forget.drop(clips, register)[1]:
            raise PublishRefused(
                f"{sum(r['n_clips'] for r in leaked)} clips belong to subjects asked to be forgotten after this run "
                "ingested its corpora; rerun the refresh so they are left out"
            )
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
            "params_sha256": params_sha256,
            "schemas": {
                t: schemas.load_schema(t).metadata[b"version"].decode()
                for t in ("clips", "quarantine", "splits", "features", "labels", "fused_labels", "row_lineage")
            },
            "source": {
                "corpora": {c: str(r) for c, r in ds.corpora.items()},
                "synthetic": ds.synthetic,
                "n_clips": clips.num_rows,
                "n_quarantined": quarantine.num_rows,
                "media_sha256_digest": _source_checksum(clips["sha256"].to_pylist()),
            },
            "stages": {
                "extractor_versions": []
                if extraction is None
                else sorted(set(extraction["extractor_version"].to_pylist())),
                "labelers": sorted(set(labels["labeler"].to_pylist())) if labels is not None else [],
                "versions": {name: facts.get("version") for name, facts in ds.stages.items() if facts.get("version")},
            },
            "classes": dict(sorted(Counter(lab or "unlabelled" for lab in clips["label"].to_pylist()).items())),
            "forgotten_subjects": len(register),
            "gate": {"success": gate.success, "warnings": gate.warnings, "suites": gate.suites},
            "params": params.to_dict(),
        }
        head = git(repo, "rev-parse", "HEAD").strip()
        staged = pathlib.Path(params.run_dir(run_id)) / "publish" / "dataset"
        try:
            # After recover() the working tree is the previous version: its dataset is the base of this one.
            before = Dataset(repo / "dataset") if (repo / "dataset").is_dir() else None
            on_previous = bool(existing) and head == git(repo, "rev-parse", f"{existing[-1]}^{{}}").strip()
            row_lineage = _row_lineage(
                repo,
                previous=existing[-1] if existing else None,
                before=before if on_previous else None,
                ds=ds,
                tag=tag,
                run_id=run_id,
            )
            with DatasetWriter(staged, corpora=ds.corpora, synthetic=ds.synthetic, stages=ds.stages) as writer:
                writer.pass_through(ds)
                writer.write_table("lineage", row_lineage, previous=before if on_previous else None)
                for name in ("validation.json", "validation.html"):
                    if (ds.path / name).is_file():
                        io.link_or_copy(ds.path / name, writer.tmp / name)
                writer.copy_tree("reports", ds.path / "reports")
                _report_of_version(ds, writer.tmp, params, record)
                writer.commit()
            _sync(staged, repo / "dataset")
            io.write_json(repo / "lineage.json", record)
            # the dataset card (README.md, Hugging Face YAML) and croissant.json describe the files just synced
            from emopipe.exports import card

            card.write(repo, Dataset(repo / "dataset"), record)
            forget.write(repo / forget.FILE, register)
            _stage_metrics(ds.path, repo)
            dvc(repo, "add", "-q", "dataset")
            dvc(repo, "push", "-r", "default")  # not -q: it hides the error (credentials, bucket) as well
            failpoint("publish:after_push")
            git(repo, "add", "dataset.dvc", ".gitignore", "lineage.json", forget.FILE, "dvc.yaml", "metrics")
            git(repo, "add", "README.md", "croissant.json")
            git(repo, "commit", "-q", "-m", f"{tag}: {clips.num_rows} clips from run {run_id}\n\n{TRAILER}: {tag}")
            failpoint("publish:after_commit")
            git(repo, "tag", "-a", tag, "-m", f"emopipe dataset {tag} (digest {digest[:12]}, run {run_id})")
        except BaseException:
            log.error("publish of %s failed; restoring the data repository to %s", tag, head[:12])
            _rollback(repo, head)
            raise
    msg = f"published {tag}: {clips.num_rows} clips, {quarantine.num_rows} quarantined, pushed to {cfg.remote}"
    log.info("%s", msg)
    return PublishResult(tag, True, msg, repo)


def _report_of_version(ds: Dataset, folder: pathlib.Path, params: Params, record: dict[str, Any]) -> None:
    """The bias report and datasheet shipped inside the version name it (the gate's copy says "not published yet")."""
    from emopipe import audit_report

    inputs = audit_report.inputs_from(ds, version=record["version"], lineage=record, thresholds=params.validate)
    if (folder / "validation.html").is_file():
        inputs.validation_page = folder / "validation.html"
    audit_report.render(inputs, folder / "reports")


def _row_lineage(
    repo: pathlib.Path,
    *,
    previous: str | None,
    before: Dataset | None,
    ds: Dataset,
    tag: str,
    run_id: str,
) -> pa.Table:
    """Per clip: source checksum, stage and model versions, and the version that first published the same row.

    `previous` is the latest version before this one; its row lineage comes from `before` (the data repository's
    working tree, when it is that version) or else from `dvc get`. A version from before row lineage existed has
    none: then every row starts here.
    """
    extraction, labels = ds.extraction, ds.labels
    extractor = (
        {}
        if extraction is None
        else dict(zip(extraction["clip_id"].to_pylist(), extraction["extractor_version"].to_pylist(), strict=True))
    )
    labelers: dict[str, list[str]] = {}
    if labels is not None:
        for cid, name in zip(labels["clip_id"].to_pylist(), labels["labeler"].to_pylist(), strict=True):
            labelers.setdefault(cid, []).append(name)
    old: list[dict[str, Any]] = []
    if previous is not None:
        if before is not None and before.has("lineage"):
            old = before.table("lineage").to_pylist()
        elif before is not None and (before.path / "lineage.parquet").is_file():  # the first layout
            import pyarrow.parquet as pq

            old = pq.read_table(before.path / "lineage.parquet").to_pylist()
        else:
            with contextlib.suppress(FileNotFoundError):
                old = read_table_at(repo, previous, "lineage").to_pylist()
    first = {
        (r["clip_id"], r["sha256"], r["extractor_version"], tuple(r["labelers"] or ())): (
            r["first_published_in"],
            r["first_published_run_id"],
            r.get("first_code_version") or r.get("code_version") or "unknown",
        )
        for r in old
    }
    code = code_version()
    rows = []
    for row in ds.clips.select(["clip_id", "corpus", "media_path", "sha256"]).to_pylist():
        cid = row["clip_id"]
        names = sorted(labelers.get(cid, [])) or None
        since = first.get((cid, row["sha256"], extractor.get(cid), tuple(names or ())), (tag, run_id, code))
        rows.append(
            {
                **row,
                "extractor_version": extractor.get(cid),
                "labelers": names,
                "first_published_in": since[0],
                "first_published_run_id": since[1],
                "first_code_version": since[2],
            }
        )
    return schemas.from_rows(rows, ROW_LINEAGE)


def _sync(src: pathlib.Path, dst: pathlib.Path) -> None:
    """Make `dst` hold exactly the files of `src`, touching only what differs (DVC then rehashes only those).

    A file that is already there with the same size and bytes is left alone (shards are named by their content,
    so an unchanged shard is never rewritten); the rest is copied in; files not in `src` are removed.
    """
    import filecmp

    dst.mkdir(parents=True, exist_ok=True)
    wanted = {p.relative_to(src) for p in src.rglob("*") if p.is_file()}
    for rel in sorted(wanted):
        target = dst / rel
        if target.is_file() and target.stat().st_size == (src / rel).stat().st_size:
            if rel.name.startswith("part-") or filecmp.cmp(src / rel, target, shallow=False):
                continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        shutil.copyfile(src / rel, tmp)
        os.replace(tmp, target)
    for path in sorted(dst.rglob("*"), reverse=True):
        rel = path.relative_to(dst)
        if path.is_file() and rel not in wanted:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


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
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ValueError(f"{dest} already exists and is not an empty folder: check out into a new one")
    _run(["git", "clone", "-q", str(repo.resolve()), str(dest)], repo.parent)
    git(dest, "-c", "advice.detachedHead=false", "checkout", "-q", tag)
    with remotes.credentials(params.publish.remote, params.publish.aws_conn_id):
        dvc(dest, "pull")  # not -q: it hides the error (credentials, bucket) as well
    return dest
