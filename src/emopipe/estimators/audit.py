"""The instrument audit of attribute estimators, and how trusted estimates reach the bias tables.

An estimate about a person is a measurement by an instrument whose errors are unknown until they are measured. So:

1. `instrument_audit` scores every estimator on the clips whose attribute the corpus itself records (annotated or
   derived: RAVDESS gender from the actor number, footage sidecars; a value a corpus estimated itself, such as
   MAFW's gender, is no truth), per corpus and over ALL corpora, overall and per true group, and per emotion label
   (an estimator whose errors depend on the emotion shown would fake a label dependence). Only estimates at or
   above the estimator's `min_confidence` are scored: those are the ones that would be used.
2. An estimator is trusted only when every testable row meets the blocking thresholds (params.yaml validate:
   `min_estimator_accuracy`, `max_estimator_group_error`) and every value it estimates anywhere was checked on at
   least `min_estimator_group_count` clips of that true group. Nothing checked, nothing trusted.
3. `with_estimates` joins trusted estimates (at or above their threshold) into the attribute columns of a copy of
   the clips table, only where the clip's own value is null, with `<attribute>_source = estimated`: the table the
   bias audit reads. The clips table itself stays as the corpus gave it; the estimates stay in their own table.
4. `attribute_coverage` says per corpus and attribute how many clips were given a value, estimated, or left unknown
   and why; `rai_facts` gives the facts a dataset card or Croissant's RAI fields report.

All pure functions over Arrow tables.
"""

from __future__ import annotations

import logging
import pathlib
from collections import Counter, defaultdict
from typing import Any

import pyarrow as pa

from emopipe import schemas
from emopipe.config import EstimatorSpec, ValidateConfig
from emopipe.estimators.vocabulary import vocabularies
from emopipe.stages.agreement import ALL

log = logging.getLogger(__name__)

INSTRUMENT_AUDIT = schemas.load_schema("instrument_audit")
ATTRIBUTE_COVERAGE = schemas.load_schema("attribute_coverage")
TRUTH_SOURCES = frozenset({"annotated", "derived"})  # a corpus's own estimate is not a truth to score against
ESTIMATED = "estimated"
STAGE = "estimate_attributes"  # the stage's facts in a dataset's manifest
DEFAULT_MIN_CONFIDENCE = float(EstimatorSpec.model_fields["min_confidence"].default)


def _require(table: pa.Table, name: str, columns: tuple[str, ...]) -> None:
    if missing := [c for c in columns if c not in table.column_names]:
        raise ValueError(f"{name}: missing columns {missing}")


def estimator_facts(estimates: pa.Table, stages: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """estimator (`name@version`) -> {attribute, kind, min_confidence}, for every estimator with rows.

    Args:
        estimates: the estimates table.
        stages: the dataset's stage facts (Dataset.stages), where estimate_attributes recorded each estimator's
            min_confidence; an estimator not recorded there gets the default threshold.
    """
    _require(estimates, "estimates", ("estimator", "attribute", "kind"))
    recorded = {e.get("estimator"): e for e in ((stages or {}).get(STAGE) or {}).get("estimators") or []}
    out: dict[str, dict[str, Any]] = {}
    columns = (estimates[c].to_pylist() for c in ("estimator", "attribute", "kind"))
    for est, attribute, kind in zip(*columns, strict=True):
        if est in out:
            if out[est]["attribute"] != attribute:
                raise ValueError(f"estimates: {est!r} estimates both {out[est]['attribute']!r} and {attribute!r}")
            continue
        threshold = recorded.get(est, {}).get("min_confidence", DEFAULT_MIN_CONFIDENCE)
        out[est] = {"attribute": attribute, "kind": kind, "min_confidence": float(threshold)}
    return dict(sorted(out.items()))


def _own(clips: pa.Table, attribute: str) -> tuple[list[Any], list[Any]]:
    """A clip attribute's values and sources (all null when the clips table has no such column)."""
    n = clips.num_rows
    values = clips[attribute].to_pylist() if attribute in clips.column_names else [None] * n
    source = f"{attribute}_source"
    sources = clips[source].to_pylist() if source in clips.column_names else [None] * n
    return values, sources


def _by_estimator(estimates: pa.Table) -> dict[str, list[dict[str, Any]]]:
    columns = ("clip_id", "estimator", "value", "confidence", "error")
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in estimates.select(list(columns)).to_pylist():
        out[row["estimator"]].append(row)
    return out


def _answered(row: dict[str, Any], threshold: float) -> str | None:
    """The estimate of a row if it is usable (no error, a value, confident enough), else None."""
    if row["error"] is not None or row["value"] is None or row["confidence"] is None:
        return None
    return row["value"] if row["confidence"] >= threshold else None


def _score(
    key: dict[str, Any], members: list[tuple[str, str | None, str, str | None, str]], n_outside: int,
    cfg: ValidateConfig, *, overall: bool,
) -> dict[str, Any]:  # fmt: skip
    """One instrument_audit row over `members` (corpus, human label, truth, usable estimate or None, truth source).

    Args:
        key: the row's identifying columns (estimator, attribute, kind, corpus, truth_group, min_confidence).
        members: the clips scored.
        n_outside: clips whose true value is outside the vocabulary.
        cfg: the thresholds.
        overall: the row scores every group (accuracy) rather than one true group (error rate).
    """
    minimum = cfg.min_estimator_group_count
    answered = [m for m in members if m[3] is not None]
    correct = sum(1 for m in answered if m[3] == m[2])
    accuracy = correct / len(answered) if answered else None
    per_label: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # label -> [answered, wrong]
    for _, label, truth, estimate, _ in answered:
        if label is not None:
            per_label[label][0] += 1
            per_label[label][1] += estimate != truth
    canonical = schemas.taxonomy().canonical
    order = [c for c in canonical if c in per_label] + sorted(set(per_label) - set(canonical))
    error_by_label = {lab: per_label[lab][1] / per_label[lab][0] for lab in order}
    eligible = [lab for lab in order if per_label[lab][0] >= minimum]
    worst = max(eligible, key=lambda lab: error_by_label[lab], default=None)  # ties: canonical order
    testable = len(answered) >= minimum
    row: dict[str, Any] = {
        **key,
        "truth_sources": ",".join(sorted({m[4] for m in members})) or None,
        "n_truth": len(members),
        "n_outside_vocabulary": n_outside,
        "n_answered": len(answered),
        "coverage": len(answered) / len(members) if members else None,
        "n_correct": correct,
        "accuracy": accuracy,
        "error_rate": None if accuracy is None else 1 - accuracy,
        "confusions": sorted(Counter(m[3] for m in answered).items()),
        "error_by_label": list(error_by_label.items()),
        "max_label_error": error_by_label[worst] if worst is not None else None,
        "max_label_error_label": worst,
        "testable": testable,
    }
    reasons = []
    if not testable:
        reasons.append(f"{len(answered)} clips answered at confidence >= {key['min_confidence']:g} (fewer than "
                       f"{minimum}): not checked")  # fmt: skip
    else:
        if overall and accuracy < cfg.min_estimator_accuracy.blocking:
            reasons.append(f"accuracy {accuracy:.2f} < {cfg.min_estimator_accuracy.blocking:g}")
        if not overall and row["error_rate"] > cfg.max_estimator_group_error.blocking:
            reasons.append(
                f"error rate {row['error_rate']:.2f} > {cfg.max_estimator_group_error.blocking:g} for true "
                f"{key['truth_group']}"
            )
        if worst is not None and error_by_label[worst] > cfg.max_estimator_group_error.blocking:
            reasons.append(
                f"error rate {error_by_label[worst]:.2f} > {cfg.max_estimator_group_error.blocking:g} on clips "
                f"labelled {worst}"
            )
    row["passed"] = (not reasons) if testable else None
    if n_outside:
        reasons.append(f"{n_outside} clips with a value outside the vocabulary not compared")
    row["note"] = "; ".join(reasons) or None
    return row


def _verdict(rows: list[dict[str, Any]], produced: Counter, attribute: str, cfg: ValidateConfig) -> tuple[bool, str]:
    """Whether an estimator is trusted, and why (or why not), from its audit rows and the values it estimates."""
    minimum = cfg.min_estimator_group_count
    overall = rows[0]
    problems = []
    if overall["n_truth"] == 0:
        problems.append(
            f"no clip with an annotated or derived {attribute} (inside its vocabulary) to check it against"
        )
    for r in rows:
        if r["testable"] and not r["passed"]:
            where = "every corpus" if r["corpus"] == ALL else r["corpus"]
            problems.append(f"{r['note']} ({where})")
    checked = {r["truth_group"]: r["n_answered"] for r in rows if r["corpus"] == ALL and r["truth_group"] != ALL}
    for value, n in sorted(produced.items()):
        if checked.get(value, 0) < minimum:
            problems.append(
                f"it estimates {value} for {n} clips, but only {checked.get(value, 0)} clips of true {value} could "
                f"check it (fewer than {minimum})"
            )
    if overall["n_truth"] and not overall["testable"] and not produced:
        problems.append(overall["note"])
    if problems:
        return False, "kept out of the bias tables: " + "; ".join(dict.fromkeys(problems))
    corpora = sorted({r["corpus"] for r in rows if r["corpus"] != ALL and r["n_truth"]})
    groups = [r for r in rows if r["corpus"] == ALL and r["truth_group"] != ALL]
    worst = max(groups, key=lambda r: (r["error_rate"] or 0.0, r["truth_group"]), default=None)
    text = (
        f"trusted: accuracy {overall['accuracy']:.2f} on {overall['n_answered']} clips with a known {attribute} "
        f"({', '.join(corpora)})"
    )
    if worst is not None:
        text += f", highest group error rate {worst['error_rate']:.2f} (true {worst['truth_group']})"
    warn = []
    if overall["accuracy"] < cfg.min_estimator_accuracy.warning:
        warn.append(f"accuracy below {cfg.min_estimator_accuracy.warning:g}")
    if any((r["error_rate"] or 0) > cfg.max_estimator_group_error.warning for r in groups if r["testable"]):
        warn.append(f"a group's error rate above {cfg.max_estimator_group_error.warning:g}")
    return True, text + (f"; warning: {', '.join(warn)}" if warn else "")


def instrument_audit(
    clips: pa.Table, estimates: pa.Table, facts: dict[str, dict[str, Any]], cfg: ValidateConfig
) -> pa.Table:
    """Per estimator, corpus (and ALL) and true group (and ALL): how well it estimates where the truth is known.

    Args:
        clips: the clips table (clip_id, corpus, label, the attribute columns and their `_source` columns).
        estimates: the estimates table.
        facts: estimator -> {attribute, kind, min_confidence} (`estimator_facts`).
        cfg: the thresholds (validate: min_estimator_accuracy, max_estimator_group_error,
            min_estimator_group_count; the blocking levels decide).

    Returns:
        The instrument_audit table (schemas/instrument_audit.yaml): per estimator the ALL/ALL row first (always
        present: it carries the verdict even with nothing to check), then its groups, then each corpus likewise.
    """
    _require(clips, "clips", ("clip_id", "corpus", "label"))
    _require(estimates, "estimates", ("clip_id", "estimator", "value", "confidence", "error"))
    index = {c: i for i, c in enumerate(clips["clip_id"].to_pylist())}
    corpora, labels = clips["corpus"].to_pylist(), clips["label"].to_pylist()
    grouped = _by_estimator(estimates)
    out = []
    for est, f in facts.items():
        attribute, threshold = f["attribute"], f["min_confidence"]
        vocab = vocabularies()[attribute]
        values, sources = _own(clips, attribute)
        members, outside, produced = [], Counter(), Counter()
        for row in grouped.get(est, []):
            i = index.get(row["clip_id"])
            if i is None or row["error"] is not None:
                continue
            usable = _answered(row, threshold)
            if usable is not None:
                produced[usable] += 1
            if values[i] is None or sources[i] not in TRUTH_SOURCES:
                continue
            truth = vocab.normalise(values[i])
            if truth is None:
                outside[corpora[i]] += 1
                continue
            members.append((corpora[i], labels[i], truth, usable, sources[i]))
        rows = []
        for scope in [ALL, *sorted({m[0] for m in members} | set(outside))]:
            inside = [m for m in members if scope in (ALL, m[0])]
            key = {"estimator": est, "attribute": attribute, "kind": f["kind"], "corpus": scope,
                   "min_confidence": threshold}  # fmt: skip
            n_out = sum(outside.values()) if scope == ALL else outside[scope]
            rows.append(_score({**key, "truth_group": ALL}, inside, n_out, cfg, overall=True))
            present = {m[2] for m in inside}
            for group in [v for v in vocab.values if v in present]:
                part = [m for m in inside if m[2] == group]
                rows.append(_score({**key, "truth_group": group}, part, 0, cfg, overall=False))
        trusted, verdict = _verdict(rows, produced, attribute, cfg)
        out += [{**r, "trusted": trusted, "verdict": verdict} for r in rows]
        (log.info if trusted else log.warning)("instrument audit of %s: %s", est, verdict)
    return schemas.from_rows(out, INSTRUMENT_AUDIT)


def trusted_estimators(audit: pa.Table) -> dict[str, tuple[str, float]]:
    """estimator -> (attribute, min_confidence) for the estimators that passed their instrument audit."""
    out = {}
    columns = ["estimator", "attribute", "corpus", "truth_group", "trusted", "min_confidence"]
    for r in audit.select(columns).to_pylist():
        if r["corpus"] == ALL and r["truth_group"] == ALL and r["trusted"]:
            out[r["estimator"]] = (r["attribute"], float(r["min_confidence"]))
    return out


def _best(estimates: pa.Table, trusted: dict[str, tuple[str, float]]) -> dict[tuple[str, str], tuple[str, str]]:
    """(attribute, clip_id) -> (value, estimator): the most confident usable trusted estimate of each clip."""
    best: dict[tuple[str, str], tuple[float, str, str]] = {}
    for row in estimates.select(["clip_id", "estimator", "value", "confidence", "error"]).to_pylist():
        if row["estimator"] not in trusted:
            continue
        attribute, threshold = trusted[row["estimator"]]
        if (value := _answered(row, threshold)) is None:
            continue
        key, mine = (attribute, row["clip_id"]), (float(row["confidence"]), row["estimator"], value)
        held = best.get(key)
        if held is None or (mine[0], held[1]) > (held[0], mine[1]):  # higher confidence; ties: the first name
            best[key] = mine
    return {k: (v, e) for k, (_, e, v) in best.items()}


def estimated_attributes(audit: pa.Table) -> list[str]:
    """The attributes some estimator in the audit estimates, in vocabulary order."""
    present = set(audit["attribute"].to_pylist())
    return [a for a in vocabularies() if a in present]


def with_estimates(clips: pa.Table, estimates: pa.Table, audit: pa.Table) -> pa.Table:
    """The clips with trusted estimates filled into their attribute columns, for the bias audit only.

    A clip's own value (annotated, derived, or estimated by the corpus) is never replaced: only a null value is
    filled, by the most confident trusted estimate at or above its estimator's min_confidence, and its
    `<attribute>_source` becomes `estimated`. An attribute the clips table lacks (skin_tone) is added as a column.

    Args:
        clips: the clips table as the corpus gave it.
        estimates: the estimates table.
        audit: the instrument_audit table (its verdicts and thresholds decide what is used).
    """
    trusted = trusted_estimators(audit)
    best = _best(estimates, trusted)
    out = clips
    ids = clips["clip_id"].to_pylist()
    for attribute in estimated_attributes(audit):
        values, sources = _own(clips, attribute)
        filled_v, filled_s = list(values), list(sources)
        for i, clip_id in enumerate(ids):
            if values[i] is None and (attribute, clip_id) in best:
                filled_v[i], filled_s[i] = best[attribute, clip_id][0], ESTIMATED
        for name, data in ((attribute, filled_v), (f"{attribute}_source", filled_s)):
            column = pa.array(data, pa.string())
            if name in out.column_names:
                out = out.set_column(out.column_names.index(name), name, column)
            else:
                out = out.append_column(name, column)
    return out


def attribute_coverage(clips: pa.Table, estimates: pa.Table, audit: pa.Table) -> pa.Table:
    """Per corpus and estimated attribute: given, estimated and unknown clips (schemas/attribute_coverage.yaml)."""
    trusted = trusted_estimators(audit)
    best = _best(estimates, trusted)
    kept_out = {r["estimator"]: r["attribute"] for r in audit.select(["estimator", "attribute", "trusted"]).to_pylist()
                if not r["trusted"]}  # fmt: skip
    seen_by: dict[tuple[str, str], set[str]] = defaultdict(set)  # (attribute, clip) -> estimators with a row
    valued_by: dict[tuple[str, str], set[str]] = defaultdict(set)  # ... whose row has a value
    attribute_of = {**{e: a for e, (a, _) in trusted.items()}, **kept_out}
    for row in estimates.select(["clip_id", "estimator", "value", "error"]).to_pylist():
        if row["error"] is None and (attribute := attribute_of.get(row["estimator"])) is not None:
            seen_by[attribute, row["clip_id"]].add(row["estimator"])
            if row["value"] is not None:
                valued_by[attribute, row["clip_id"]].add(row["estimator"])
    ids, corpora = clips["clip_id"].to_pylist(), clips["corpus"].to_pylist()
    rows = []
    for corpus in sorted(set(corpora)):
        idx = [i for i, c in enumerate(corpora) if c == corpus]
        for attribute in estimated_attributes(audit):
            values, sources = _own(clips, attribute)
            given = [i for i in idx if values[i] is not None]
            estimated = Counter()
            low = untrusted = 0
            for i in idx:
                key = (attribute, ids[i])
                if values[i] is not None:
                    continue
                if key in best:
                    estimated[best[key][0]] += 1
                elif seen_by[key] & set(trusted):
                    low += 1
                elif valued_by[key]:
                    untrusted += 1
            n_estimated = sum(estimated.values())
            n_unknown = len(idx) - len(given) - n_estimated
            order = vocabularies()[attribute].values
            rows.append(
                {
                    "corpus": corpus,
                    "attribute": attribute,
                    "n_clips": len(idx),
                    "n_given": len(given),
                    "given_sources": ",".join(sorted({sources[i] or "unrecorded" for i in given})) or None,
                    "n_estimated": n_estimated,
                    "n_low_confidence": low,
                    "n_untrusted": untrusted,
                    "n_unknown": n_unknown,
                    "share_unknown": n_unknown / len(idx) if idx else 0.0,
                    "estimators_used": sorted(e for e, (a, _) in trusted.items() if a == attribute),
                    "estimators_kept_out": sorted(e for e, a in kept_out.items() if a == attribute),
                    "estimated_groups": [(v, estimated[v]) for v in order if estimated[v]],
                }
            )
    return schemas.from_rows(rows, ATTRIBUTE_COVERAGE)


def audit_tables(
    clips: pa.Table, estimates: pa.Table | None, stages: dict[str, Any] | None, cfg: ValidateConfig
) -> tuple[pa.Table, dict[str, pa.Table]]:
    """The clips the bias audit reads (trusted estimates joined) and the instrument_audit and attribute_coverage
    tables; without estimates, the clips unchanged and no tables.

    Args:
        clips: the clips table.
        estimates: the estimates table, or None.
        stages: the dataset's stage facts (each estimator's min_confidence).
        cfg: the thresholds.
    """
    if estimates is None or estimates.num_rows == 0:
        return clips, {}
    audit = instrument_audit(clips, estimates, estimator_facts(estimates, stages), cfg)
    tables = {"instrument_audit": audit, "attribute_coverage": attribute_coverage(clips, estimates, audit)}
    return with_estimates(clips, estimates, audit), tables


def rai_facts(audit: pa.Table | None, coverage: pa.Table | None = None) -> list[dict[str, Any]]:
    """What a dataset card or Croissant's Responsible-AI fields say about each estimated attribute.

    Per estimator: the attribute, its name and version, what it reads, whether its estimates are used and why
    (the verdict), its threshold, how well it did where it could be checked (accuracy, coverage and error rate per
    true group over every corpus with a known value, and which corpora those were), and per corpus how many clips
    carry its estimates and what share of the corpus is left unknown.

    Args:
        audit: the instrument_audit table (None or empty: no estimated attribute, an empty list).
        coverage: the attribute_coverage table.
    """
    if audit is None or audit.num_rows == 0:
        return []
    rows = audit.to_pylist()
    covered = coverage.to_pylist() if coverage is not None else []
    out = []
    for est in dict.fromkeys(r["estimator"] for r in rows):
        mine = [r for r in rows if r["estimator"] == est]
        overall = next(r for r in mine if r["corpus"] == ALL and r["truth_group"] == ALL)
        name, _, version = est.partition("@")
        used = {
            c["corpus"]: {
                "n_clips": c["n_clips"],
                "n_estimated": c["n_estimated"],  # by the attribute's trusted estimators together
                "share_estimated": c["n_estimated"] / c["n_clips"] if c["n_clips"] else 0.0,
                "share_unknown": c["share_unknown"],
            }
            for c in covered
            if c["attribute"] == overall["attribute"] and est in (c["estimators_used"] or [])
        }
        unknown = {c["corpus"]: c["share_unknown"] for c in covered if c["attribute"] == overall["attribute"]}
        out.append(
            {
                "attribute": overall["attribute"],
                "source": ESTIMATED,
                "estimator": name,
                "version": version,
                "kind": overall["kind"],
                "min_confidence": overall["min_confidence"],
                "used_in_bias_audit": overall["trusted"],
                "verdict": overall["verdict"],
                "checked_on": sorted({r["corpus"] for r in mine if r["corpus"] != ALL and r["n_truth"]}),
                "n_checked": overall["n_answered"],
                "accuracy": overall["accuracy"],
                "coverage": overall["coverage"],
                "error_rate_per_group": {
                    r["truth_group"]: r["error_rate"] for r in mine if r["corpus"] == ALL and r["truth_group"] != ALL
                },
                "used": used,
                "share_unknown": unknown,
            }
        )
    return out


def rai_facts_of(ds: Any, cfg: ValidateConfig | None = None) -> list[dict[str, Any]]:
    """`rai_facts` of a dataset (emopipe.dataset.Dataset): from the gate's reports/ when the dataset was validated,
    else computed from its clips and estimates with `cfg` (default thresholds when None)."""
    import pyarrow.parquet as pq

    folder = pathlib.Path(ds.path) / "reports"
    stored = {n: folder / f"{n}.parquet" for n in ("instrument_audit", "attribute_coverage")}
    if all(p.is_file() for p in stored.values()):
        return rai_facts(pq.read_table(stored["instrument_audit"]), pq.read_table(stored["attribute_coverage"]))
    if not ds.has("estimates"):
        return []
    _, tables = audit_tables(ds.clips, ds.table("estimates"), ds.stages, cfg or ValidateConfig())
    return rai_facts(tables.get("instrument_audit"), tables.get("attribute_coverage"))


def summary_lines(audit: pa.Table | None) -> list[str]:
    """One sentence per estimator: its verdict (for a run report or a log)."""
    if audit is None:
        return []
    return [
        f"{r['estimator']} ({r['attribute']}, {r['kind']}): {r['verdict']}"
        for r in audit.to_pylist()
        if r["corpus"] == ALL and r["truth_group"] == ALL
    ]
