"""The stages of `emotion_dataset_refresh`, as the DAG's tasks (and tests) call them.

Each function takes the params.yaml path and the run id, writes under `<work_dir>/runs/<run_id>/<stage>/` and returns
that folder as a string, so XCom only ever carries paths. The run's parameters are parsed and validated once, by its
first task, and frozen into the run folder (`params.resolved.yaml`); every later task of the run, and every Ray job
it starts, reads that frozen copy, so an edit of params.yaml during a run changes nothing in it.

A stage first works out what it has to compute (rows whose content or stage version changed since the last run that
finished it); with nothing to compute it only writes its output from the carried rows; with a few rows it computes
them in this process; with more it runs as a Ray job (its own process, or a job on the cluster) on the run's shared
local Ray head or the configured cluster. Rerunning a stage rewrites its folder atomically.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pathlib
from collections import Counter
from typing import Any

from emopipe import io
from emopipe.config import Params, SourceConfig, load_params

log = logging.getLogger(__name__)

LAST = "LAST.json"  # <work_dir>/runs/LAST.json: stage -> the folder of the last run that finished it
HASHES = "state/hashes.parquet"  # <work_dir>/state/...: (path, size, mtime) -> sha256 of every media file seen


class GateFailed(RuntimeError):
    """The quality gate has blocking failures; the message is the gate summary, `out` the gate's folder."""

    def __init__(self, summary: str, out: str | None = None) -> None:
        super().__init__(summary)
        self.out = out


def params_path(value: str | None = None) -> pathlib.Path:
    """The params file: the value given, else EMOPIPE_PARAMS, else params.yaml at the root of this checkout."""
    if value:
        return pathlib.Path(value)
    if env := os.environ.get("EMOPIPE_PARAMS"):
        return pathlib.Path(env)
    return pathlib.Path(__file__).resolve().parents[3] / "params.yaml"


def load(params_file: str | None, run_id: str | None = None) -> Params:
    """The run's parameters: its frozen copy (made by its first task) when `run_id` is given, else params.yaml."""
    if run_id is None:
        return load_params(params_path(params_file))
    from emopipe.config import run_params

    base = load_params(params_path(params_file))
    return run_params(params_path(params_file), base.run_dir(run_id))


def frozen_file(params: Params, run_id: str) -> pathlib.Path:
    """The run's frozen params file (what its Ray jobs are given)."""
    return params.run_dir(run_id) / "params.resolved.yaml"


def last(params: Params) -> dict[str, str]:
    path = params.work_dir / "runs" / LAST
    try:
        data = io.read_json(path)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def previous(params: Params, stage: str, out: pathlib.Path) -> pathlib.Path | None:
    """The folder of the last run that finished `stage` (its rows are reused), if it still exists."""
    where = last(params).get(stage)
    if not where or pathlib.Path(where) == pathlib.Path(out) or not (pathlib.Path(where) / "dataset.json").is_file():
        return None
    return pathlib.Path(where)


def finished(params: Params, stage: str, out: pathlib.Path) -> None:
    """Record that `stage` finished into `out` (the next run reuses it)."""
    pointers = {**last(params), stage: str(out)}
    io.write_json(params.work_dir / "runs" / LAST, pointers)


def ingest(params_file: str | None, run_id: str, forget_subjects: list[str] | tuple[str, ...] = ()) -> str:
    """Scan the configured corpora (the demo corpus when none is set) into clips + quarantine tables.

    `forget_subjects` (`<corpus>:<id>`) are added to the forget register first; the register's subjects are left
    out. The media found is recorded (media.json, runs/MEDIA.json) so `new_media` can tell what has landed since.
    """
    from emopipe import forget, versioning
    from emopipe.dataset import Dataset
    from emopipe.pipelines import ingest as ingest_pipeline

    params = load(params_file, run_id)  # freezes the run's parameters
    if forget_subjects:
        forget.request(params.work_dir, list(forget_subjects), reason=f"refresh run {run_id}")
    out = params.run_dir(run_id) / "ingest"
    sources = ingest_pipeline.configured_sources(params)
    register = forget.register(params.work_dir, versioning.published_forget_register(params))
    snapshot = media_snapshot(sources)  # before the scan: a file landing during this run counts as new next time
    before = previous(params, "ingest", out)
    folder = ingest_pipeline.run_sources(
        sources,
        out,
        run_id,
        forgotten=register,
        previous=Dataset(before) if before else None,
        hashes=params.work_dir / HASHES,
        splits=params.ingest.splits,
    ).path
    io.write_json(folder / "media.json", snapshot)
    io.write_json(params.work_dir / "runs" / "MEDIA.json", snapshot)
    finished(params, "ingest", folder)
    return str(folder)


def media_snapshot(sources: list[SourceConfig]) -> dict[str, list[int]]:
    """`<corpus>/<relative path>` -> [size, mtime_ns] of every file under the corpus roots (a stat, no reads).

    Plain `os` calls on strings: for the ~10^4-10^5 files of a corpus, pathlib objects per file cost more than the
    stat itself.
    """
    snap: dict[str, list[int]] = {}
    for src in sources:
        root = os.fspath(src.root)
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            rel_dir = os.path.relpath(dirpath, root)
            prefix = f"{src.corpus}/" if rel_dir == os.curdir else f"{src.corpus}/{rel_dir.replace(os.sep, '/')}/"
            for name in filenames:
                if name.startswith("."):
                    continue
                with contextlib.suppress(OSError):  # vanished between listing and stat: it is not there
                    st = os.stat(os.path.join(dirpath, name))
                    key = f"{prefix}{name}".encode("utf-8", "backslashreplace").decode()
                    snap[key] = [st.st_size, st.st_mtime_ns]
    return snap


def new_media(params_file: str | None) -> dict[str, Any]:
    """What changed under the corpus roots since the last refresh ingested them.

    A refresh that then failed is not triggered again by the same files (that would retry a failing gate every
    scan); the daily schedule retries it, and any further drop triggers a new run.
    """
    from emopipe.pipelines import ingest as ingest_pipeline

    params = load(params_file)
    sources = ingest_pipeline.configured_sources(params)
    now = media_snapshot(sources)
    pointer = params.work_dir / "runs" / "MEDIA.json"
    before = io.read_json(pointer) if pointer.is_file() else {}
    added = sorted(set(now) - set(before))
    changed = sorted(k for k in set(now) & set(before) if now[k] != before[k])
    removed = sorted(set(before) - set(now))
    return {
        "added": len(added),
        "changed": len(changed),
        "removed": len(removed),
        "examples": (added + changed + removed)[:10],
        "since_last_refresh": pointer.is_file(),
        "roots": {src.corpus: str(src.root) for src in sources},  # what was scanned (lineage)
    }


def _runs_here(params: Params, n_rows: int, stage_gpus: Any) -> bool:
    """Whether a stage's `n_rows` new rows are computed in this process rather than as a Ray job."""
    mode = params.ray.executor
    if n_rows == 0 or mode == "in-process":
        return True
    if mode == "ray" or params.ray.dashboard_url or params.ray.address:
        return False
    wants_gpu = stage_gpus not in (None, "auto", 0, 0.0)
    return not wants_gpu and n_rows < params.ray.local_below_rows


def _stage(job: str, params_file: str | None, run_id: str, in_dir: str) -> str:
    """Run one Ray stage of the run: in this process when the work is small (or none), else as a Ray job.

    With a cluster's job server configured (`ray.dashboard_url`) the stage always runs as a job on the cluster,
    which works out there what it has to compute (the cluster's storage is the one that matters).
    """
    from emopipe.orchestration import submit_ray_job
    from emopipe.pipelines import estimate_attributes, extract_features, label_clips, probe_clips

    params = load(params_file, run_id)
    module = {
        "probe_clips": probe_clips,
        "extract_features": extract_features,
        "label_clips": label_clips,
        "estimate_attributes": estimate_attributes,
    }[job]
    out = params.run_dir(run_id) / job
    prev = previous(params, job, out)
    if params.ray.dashboard_url:
        here = False
    else:
        n = module.todo_count(params, pathlib.Path(in_dir), out, prev)
        here = _runs_here(params, n, getattr(getattr(params, job), "num_gpus", None))
        log.info("%s: %d rows to compute, %s", job, n, "in this process" if here else "as a Ray job")
    if here:
        module.run(params, pathlib.Path(in_dir), out, run_id, previous=prev)
    else:
        args = {"params": str(frozen_file(params, run_id)), "input": in_dir, "output": str(out), "run_id": run_id}
        if prev is not None:
            args["previous"] = str(prev)
        submit_ray_job(job, args, params.work_dir, cluster=params.ray)
    finished(params, job, out)
    return str(out)


def probe_clips(params_file: str | None, run_id: str, ingest_dir: str) -> str:
    """Probe new or changed media (unchanged clips keep their earlier probe)."""
    return _stage("probe_clips", params_file, run_id, ingest_dir)


def extract_features(params_file: str | None, run_id: str, probe_dir: str) -> str:
    """Extract frames, faces and audio features, reusing the last run's rows for unchanged clips."""
    return _stage("extract_features", params_file, run_id, probe_dir)


def label_clips(params_file: str | None, run_id: str, extract_dir: str) -> str:
    """Label every clip with the configured labelers, reusing the last run's rows for unchanged clips."""
    return _stage("label_clips", params_file, run_id, extract_dir)


def estimate_attributes(params_file: str | None, run_id: str, label_dir: str) -> str:
    """Estimate demographic attributes with the configured estimators (none by default: then this returns
    `label_dir` itself, and nothing is computed or written)."""
    params = load(params_file, run_id)
    if not params.estimate_attributes.estimators:
        log.info("estimate_attributes: no estimators configured; the dataset goes to the gate as it is")
        return label_dir
    return _stage("estimate_attributes", params_file, run_id, label_dir)


def validate(params_file: str | None, run_id: str, probe_dir: str) -> str:
    """Run the Great Expectations gate; raise GateFailed (after writing validation.json) when it blocks."""
    from emopipe.quality import validate as gate

    params = load(params_file, run_id)
    out = params.run_dir(run_id) / "validate"
    result = gate.run(params, pathlib.Path(probe_dir), out, run_id)
    if not result.success:
        raise GateFailed(result.summary(), str(out))
    return str(out)


def audit_dir(params: Params, run_id: str, tag: str) -> pathlib.Path:
    """Where an audit of `tag` in run `run_id` writes: <work_dir>/audits/<tag>__<run_id>/."""
    return params.work_dir / "audits" / params.run_dir(f"{tag}__{run_id}").name


def checkout_version(params_file: str | None, run_id: str, tag: str) -> str:
    """Pull a published version with DVC into a fresh clone under the audit folder; return its dataset folder."""
    import shutil

    from emopipe import versioning

    params = load(params_file, run_id)
    dest = audit_dir(params, run_id, tag) / "checkout"
    shutil.rmtree(dest, ignore_errors=True)
    return str(versioning.checkout(params, tag, dest) / "dataset")


def bias_audit(
    params_file: str | None, run_id: str, tag: str, dataset_dir: str, attributes: list[str] | None = None
) -> dict[str, Any]:
    """Audit a checked-out version for bias; write its report, datasheet and bias.json; publish nothing."""
    from emopipe import audit
    from emopipe.dataset import Dataset

    params = load(params_file, run_id)
    out = audit_dir(params, run_id, tag)
    attrs = tuple(attributes) if attributes else None
    ds = Dataset.open(dataset_dir)
    res = audit.audit_dataset(params, ds, out, f"audit-{tag}", attributes=attrs, version=tag)
    return {
        "tag": tag,
        "success": res.success,
        "blocking_failures": res.blocking_failures,
        "warnings": res.warnings,
        "report": str(res.report),
        "datasheet": str(res.datasheet),
        "metrics": str(out / "bias.json"),
    }


def publish(params_file: str | None, run_id: str, validated_dir: str) -> str:
    """Version the validated dataset with DVC (no new version when nothing changed)."""
    from emopipe import versioning

    params = load(params_file, run_id)
    res = versioning.publish(params, pathlib.Path(validated_dir), run_id, params_sha256=params.params_sha256)
    out = params.run_dir(run_id) / "publish.json"
    io.write_json(
        out,
        {
            "version": res.version,
            "created": res.created,
            "message": res.message,
            "data_repo": str(res.data_repo),
            "commit": versioning.git(res.data_repo, "rev-parse", f"{res.version}^{{commit}}").strip(),
            "remote": params.publish.remote,
        },
    )
    return str(out)


def export(
    params_file: str | None, run_id: str, publish_json: str, formats: list[str] | tuple[str, ...] | None = None
) -> str:
    """Export the version the run published (or found unchanged) in each of `formats` (default: params.yaml
    `export.formats`) into `<export.out_dir or work_dir/exports>/<tag>/<format>`; an export already there is kept.
    Writes <run_dir>/export.json (format -> what was written) and returns its path."""
    from emopipe import forget, versioning
    from emopipe.exports import api as exports

    params = load(params_file, run_id)
    chosen = list(formats if formats is not None else params.export.formats)
    outcome = io.read_json(publish_json)
    results: dict[str, Any] = {}
    if chosen:
        tag = outcome["version"]
        ds, version = exports.open_version(params, tag)
        register = forget.register(params.work_dir, versioning.published_forget_register(params))
        base = params.export.out_dir or params.work_dir / "exports"
        for fmt in chosen:
            options = exports.Options.from_params(params, fmt, base / tag / fmt, progress=False)
            res = exports.export(
                ds, options, version=version, forgotten=register,
                subject_folds=params.ingest.splits.subject_folds, seed=params.ingest.splits.seed,
            )  # fmt: skip
            log.info("%s", res.line())
            results[fmt] = {"out": str(res.out), "line": res.line(), "counts": res.manifest["counts"]}
    out = params.run_dir(run_id) / "export.json"
    io.write_json(out, results)
    return str(out)


def report(params_file: str | None, run_id: str) -> dict[str, Any]:
    """Write report.json and report.md for the run, whatever happened, point runs/LATEST at it, stop its Ray head."""
    from emopipe import raycluster
    from emopipe.dataset import Dataset, DatasetError

    params = load(params_file, run_id)
    run_dir = params.run_dir(run_id)
    raycluster.stop_head(run_dir)  # the run's last task: its local Ray is not needed any more
    rep: dict[str, Any] = {"run_id": run_id, "run_dir": str(run_dir), "params_file": str(params_path(params_file))}
    if (frozen := frozen_file(params, run_id)).is_file():
        rep["params_resolved"], rep["params_sha256"] = str(frozen), params.params_sha256
    stage = next(
        (
            run_dir / name
            for name in ("estimate_attributes", "label_clips", "extract_features", "probe_clips", "ingest")
            if (run_dir / name / "dataset.json").is_file()
        ),
        None,
    )
    if stage is not None:
        from emopipe.sources import protocol

        rep["dataset_dir"] = str(stage)
        try:
            ds = Dataset.open(stage)
            clips, quarantine = ds.clips, ds.quarantine.to_pylist()
        except (DatasetError, OSError, ValueError) as err:
            rep["error"] = f"{stage}: {err}"
        else:
            rep["corpora"] = {c: str(r) for c, r in ds.corpora.items()}
            rep["synthetic"] = ds.synthetic
            rep["clips"] = clips.num_rows
            rep["clips_by_corpus"] = dict(sorted(Counter(clips["corpus"].to_pylist()).items()))
            rep["labelled_by_corpus"] = dict(
                sorted(
                    Counter(
                        c
                        for c, lab in zip(clips["corpus"].to_pylist(), clips["label"].to_pylist(), strict=True)
                        if lab
                    ).items()
                )
            )
            rep["protocol"] = protocol.check(clips)
            rep["quarantined"] = len(quarantine)
            rep["quarantine_by_reason"] = dict(Counter(q["reason"] for q in quarantine))
            rep["quarantine"] = [f"{q['corpus']}/{q['path']}: {q['reason']} ({q['detail']})" for q in quarantine]
    rep["stages"] = []
    for name, file in (
        ("probe_clips", "probe.json"),
        ("extract_features", "extract.json"),
        ("label_clips", "label.json"),
        ("estimate_attributes", "estimate.json"),
    ):
        path = run_dir / name / file
        if path.is_file():
            rep["stages"].append(io.read_json(path))
    for summary in rep["stages"]:
        if summary["stage"] == "extract_features":
            rep["extraction"] = {
                "n_clips": summary["n_rows"],
                "n_extracted": summary["n_processed"],
                "n_reused": summary["n_reused"],
                "extractor_version": summary["version"],
                "errors": summary["errors"],
                **summary["extra"],
            }
        if summary["stage"] == "label_clips":
            rep["labelling"] = {
                "n_rows": summary["n_rows"],
                "n_labelled": summary["n_processed"],
                "n_reused": summary["n_reused"],
                "errors": summary["n_errors"],
                **summary["extra"],
            }
        if summary["stage"] == "estimate_attributes":
            rep["estimation"] = {
                "n_rows": summary["n_rows"],
                "n_estimated": summary["n_processed"],
                "n_reused": summary["n_reused"],
                "errors": summary["n_errors"],
                **summary["extra"],
            }
    if (run_dir / "validate" / "validation.json").exists():
        from emopipe.quality.validate import load_result

        gate = load_result(run_dir / "validate")
        if (run_dir / "validate" / "reports" / "bias_report.html").is_file():
            rep["bias_report"] = str(run_dir / "validate" / "reports" / "bias_report.html")
        rep["gate"] = {
            "success": gate.success,
            "blocking_failures": gate.blocking_failures,
            "warnings": gate.warnings,
            "data_docs": gate.data_docs,
        }
    if (run_dir / "publish.json").exists():
        rep["publish"] = io.read_json(run_dir / "publish.json")
    if (run_dir / "export.json").exists():
        rep["exports"] = io.read_json(run_dir / "export.json")
    if (run_dir / "ingest" / "forget_removed.json").is_file():
        rep["forgotten"] = [
            {k: r[k] for k in ("subject_sha256", "corpus", "n_clips")}
            for r in io.read_json(run_dir / "ingest" / "forget_removed.json")["removed"]
        ]
    rep["outcome"] = _outcome(rep)
    io.write_json(run_dir / "report.json", rep)
    (run_dir / "report.md").write_text(render_report(rep), encoding="utf-8")
    io.write_json(params.work_dir / "runs" / "LATEST.json", {"run_dir": str(run_dir), "run_id": run_id})
    return rep


def _outcome(rep: dict[str, Any]) -> str:
    if "publish" in rep:
        return "published" if rep["publish"]["created"] else "unchanged"
    if rep.get("gate", {}).get("success") is False:
        return "gate_failed"
    return "failed"


def render_report(rep: dict[str, Any]) -> str:
    """The run report as Markdown, for a person (values from the data are neutralised: never markup)."""
    from emopipe.templates import md_safe

    lines = [f"# emopipe run {rep['run_id']}", "", f"**Outcome: {rep['outcome']}**", ""]
    if pub := rep.get("publish"):
        lines += [
            f"- version: `{pub['version']}` ({pub['message']})",
            f"- data repository: `{pub['data_repo']}`",
            f"- DVC remote: `{pub['remote']}`",
            f"- reproduce: `git clone {pub['data_repo']} ds && cd ds && git checkout {pub['version']} && dvc pull`",
        ]
    for fmt, facts in (rep.get("exports") or {}).items():
        lines.append(f"- export {fmt}: {facts['line']}")
    if corpora := rep.get("corpora"):
        lines += [
            f"- corpus {name} at `{root}`: {rep['clips_by_corpus'].get(name, 0)} clips, "
            f"{rep['labelled_by_corpus'].get(name, 0)} labelled"
            for name, root in corpora.items()
        ]
        lines += [f"- quarantined: {rep['quarantined']} {rep['quarantine_by_reason']}"]
        for name, facts in rep.get("protocol", {}).items():
            sizes = ", ".join(f"{k}: {v['train']}/{v['test']}" for k, v in facts["folds"].items())
            lines.append(
                f"- {name} folds (train/test) {sizes}; in exactly one test fold: "
                f"{facts['clips_in_exactly_one_test_fold']}/{facts['clips_with_folds']}; "
                f"train/test overlaps: {facts['train_test_overlaps']}"
            )
    if synthetic := rep.get("synthetic"):
        lines += [
            f"- **synthetic**: corpus {name} is generated, not recorded: {text}" for name, text in synthetic.items()
        ]
    if ext := rep.get("extraction"):
        lines.append(
            f"- features: {ext['n_clips']} clips ({ext['n_extracted']} extracted, {ext['n_reused']} reused from the "
            f"last run), extractor {ext['extractor_version']}, errors {ext['errors'] or 'none'}, "
            f"mean face share {ext.get('mean_face_share')}, {ext.get('bytes_per_clip')} bytes per clip"
        )
    if lab := rep.get("labelling"):
        lines.append(
            f"- labels: {lab['n_rows']} rows from {', '.join(lab['labelers'])} ({lab['n_labelled']} new, "
            f"{lab['n_reused']} reused); abstained {lab['abstained'] or 'never'}; fused: {lab.get('fusion', {})}"
        )
        lines += [
            f"  - agreement {a['labeler']} on {a['corpus']}: WAR {a['war']:.3f}, UAR {a['uar']:.3f}, "
            f"kappa {a.get('kappa')}, coverage {a['coverage']:.2f} ({a['n_clips']} human-labelled clips)"
            for a in lab["agreement"]
        ]
    if est := rep.get("estimation"):
        lines.append(
            f"- estimates: {est['n_rows']} rows from {', '.join(est.get('estimators') or []) or 'no estimator'} "
            f"({est['n_estimated']} new, {est['n_reused']} reused); abstained {est.get('abstained') or 'never'}"
        )
        lines += [f"  - instrument audit of {md_safe(v)}" for v in est.get("instrument_audit") or []]
    if rep.get("stages"):
        lines += ["", "## Stages", ""]
        lines += [f"- {_stage_line(s)}" for s in rep["stages"]]
    if gate := rep.get("gate"):
        lines += ["", f"- Data Docs: {gate['data_docs']}", f"- bias report: {rep.get('bias_report')}"]
        lines += ["", "## Quality gate", ""]
        lines += [f"- BLOCKING: {md_safe(m)}" for m in gate["blocking_failures"]] or ["- no blocking failures"]
        lines += [f"- warning: {md_safe(m)}" for m in gate["warnings"]] or ["- no warnings"]
    for f in rep.get("forgotten", []):
        lines.append(
            f"- forgotten on request: {f['n_clips']} clips of subject {f['subject_sha256'][:12]}… ({f['corpus']})"
        )
    if rep.get("quarantine"):
        lines += ["", "## Quarantine", ""] + [f"- {md_safe(q)}" for q in rep["quarantine"]]
    return "\n".join(lines) + "\n"


def _stage_line(summary: dict[str, Any]) -> str:
    from emopipe.stages.base import StageSummary

    known = set(StageSummary.__dataclass_fields__)
    return StageSummary(**{k: v for k, v in summary.items() if k in known}).line()
