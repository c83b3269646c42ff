"""Split protocols for every corpus (emopipe.splits): RAVDESS actor folds, subject-disjoint k folds, the official
DFEW/MAFW folds from their split files, and what a fold's train and test parts share."""

from __future__ import annotations

import hashlib
from collections import defaultdict

import pyarrow as pa
import pytest

from emopipe import schemas, splits
from emopipe.sources import ravdess
from tests.corpora import make_dfew, make_mafw

EMOTIONS = ("01", "02", "03", "04", "05", "06", "07", "08")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def ravdess_clips(actors: range = range(1, 25)) -> pa.Table:
    """Rows the RAVDESS reader makes for speech videos of every emotion by these actors (no files needed)."""
    rows = []
    for actor in actors:
        for emotion in EMOTIONS:
            intensity = "01" if emotion == "01" else "02"
            name = f"01-01-{emotion}-{intensity}-01-01-{actor:02d}.mp4"
            rel = f"Actor_{actor:02d}/{name}"
            rows.append(ravdess.clip_row(rel, ravdess.parse_name(name), _sha(rel), 100))
    return schemas.from_rows(rows, schemas.CLIPS)


def _by_fold(table: pa.Table, protocol: str, key) -> dict[int, dict[str, set]]:
    out: dict[int, dict[str, set]] = defaultdict(lambda: {"train": set(), "test": set()})
    for row in table.to_pylist():
        if row["protocol"] == protocol:
            out[row["fold"]][row["split"]].add(key(row))
    return out


def test_ravdess_six_folds_of_four_actors_are_actor_disjoint():
    clips = ravdess_clips()
    table = splits.build(clips)
    actor = {r["clip_id"]: ravdess.parse_name(r["media_path"].split("/")[1]).actor for r in clips.to_pylist()}
    folds = _by_fold(table, splits.ACTOR_6FOLD, lambda r: actor[r["clip_id"]])
    assert sorted(folds) == [1, 2, 3, 4, 5, 6]
    for k, parts in folds.items():
        assert parts["test"] == {4 * k - 3, 4 * k - 2, 4 * k - 1, 4 * k}, k  # actors 1-4 test in fold 1, ...
        assert parts["train"] == set(range(1, 25)) - parts["test"]
    tests = defaultdict(int)
    for row in table.to_pylist():
        if row["protocol"] == splits.ACTOR_6FOLD and row["split"] == "test":
            tests[row["clip_id"]] += 1
    assert set(tests.values()) == {1} and len(tests) == clips.num_rows  # every clip in exactly one test fold


def test_ravdess_leave_one_actor_out():
    clips = ravdess_clips(range(1, 7))
    folds = _by_fold(splits.build(clips), splits.LOAO, lambda r: r["clip_id"].rsplit("-", 1)[1])
    assert sorted(folds) == [1, 2, 3, 4, 5, 6]
    for k, parts in folds.items():
        assert parts["test"] == {f"{k:02d}"} and f"{k:02d}" not in parts["train"] and len(parts["train"]) == 5


def _footage(n_subjects: int, per_subject: int = 6, labels=("anger", "happiness", "sadness")) -> pa.Table:
    rows = []
    for s in range(n_subjects):
        for i in range(per_subject):
            cid = f"footage:s{s:02d}_{i}"
            rows.append({
                "clip_id": cid, "corpus": "footage", "native_id": cid, "media_path": f"{cid}.mp4",
                "media_form": "video", "sha256": _sha(cid), "size_bytes": 1, "license": "CC BY 4.0",
                "subject_id": f"footage:person_{s:02d}", "label": labels[(s + i) % len(labels)],
            })  # fmt: skip
    return schemas.from_rows(rows, schemas.CLIPS)


def test_subject_kfold_is_subject_disjoint_stratified_and_deterministic():
    clips = _footage(20)
    table = splits.build(clips, subject_folds=5, seed=7)
    subject = dict(zip(clips["clip_id"].to_pylist(), clips["subject_id"].to_pylist(), strict=True))
    label = dict(zip(clips["clip_id"].to_pylist(), clips["label"].to_pylist(), strict=True))
    folds = _by_fold(table, splits.SUBJECT_KFOLD, lambda r: r["clip_id"])
    assert sorted(folds) == [1, 2, 3, 4, 5]
    tested = []
    for parts in folds.values():
        assert not {subject[c] for c in parts["test"]} & {subject[c] for c in parts["train"]}
        assert len(parts["test"]) + len(parts["train"]) == clips.num_rows
        assert {label[c] for c in parts["test"]} == {"anger", "happiness", "sadness"}  # stratified by label
        tested += sorted({subject[c] for c in parts["test"]})
    assert sorted(tested) == sorted(set(subject.values()))  # each subject tested in exactly one fold
    assert splits.build(clips, subject_folds=5, seed=7).equals(table)  # same clips and seed: same folds
    assert not splits.build(clips, subject_folds=5, seed=8).equals(table)


def test_subject_kfold_with_few_or_unknown_subjects():
    three = splits.build(_footage(3), subject_folds=5)
    assert splits.protocols(three) == {("footage", splits.SUBJECT_KFOLD): [1, 2, 3]}  # one fold per subject
    assert splits.build(_footage(1)).num_rows == 0  # one person cannot be split from themselves
    rows = _footage(4).to_pylist()
    rows[0]["subject_id"] = None  # nobody can say this clip's person is not in the other part
    table = splits.build(schemas.from_rows(rows, schemas.CLIPS))
    assert rows[0]["clip_id"] not in set(table["clip_id"].to_pylist())


def test_official_folds_are_the_split_files(tmp_path):
    from emopipe.config import SourceConfig
    from emopipe.pipelines import ingest

    dfew_root, mafw_root = tmp_path / "DFEW", tmp_path / "MAFW"
    make_dfew(dfew_root, n=15, unsplit=(15,))
    make_mafw(mafw_root, list(range(101, 111)))
    ds = ingest.run_sources(
        [SourceConfig(corpus="dfew", root=dfew_root), SourceConfig(corpus="mafw", root=mafw_root)],
        tmp_path / "ingest",
        "t",
    )
    table = ds.splits
    assert splits.protocols(table) == {
        ("dfew", splits.OFFICIAL): [1, 2, 3, 4, 5],
        ("mafw", splits.OFFICIAL): [1, 2, 3, 4, 5],
    }
    expected = sorted((r["clip_id"], f["fold"], f["split"]) for r in ds.clips.to_pylist() for f in (r["folds"] or []))
    assert sorted(zip(*(table[c].to_pylist() for c in ("clip_id", "fold", "split")), strict=True)) == expected
    tests = defaultdict(list)
    for row in table.to_pylist():
        if row["split"] == "test":
            tests[row["clip_id"]].append(row["fold"])
    assert all(len(v) == 1 for v in tests.values()) and "dfew:00015" not in tests  # the unsplit clip has no fold
    assert tests["dfew:00001"] == [2]  # make_dfew: clip i tests in fold (i % 5) + 1


def test_ingest_makes_splits_after_the_forget_register(tiny_corpus, tmp_path):
    from emopipe import forget
    from emopipe.config import SourceConfig
    from emopipe.pipelines import ingest

    register = {forget.subject_hash("ravdess:actor_02"): {"corpus": "ravdess"}}
    ds = ingest.run_sources([SourceConfig(corpus="ravdess", root=tiny_corpus)], tmp_path / "ingest", "t",
                            forgotten=register)  # fmt: skip
    kept = set(ds.splits["clip_id"].to_pylist())
    assert kept and all(c.endswith("-01") for c in kept)  # only actor 1 is left to take a place in a fold
    assert splits.protocols(ds.splits) == {("ravdess", splits.ACTOR_6FOLD): [1], ("ravdess", splits.LOAO): [1]}


def _splits(rows) -> pa.Table:
    keys = ("clip_id", "corpus", "protocol", "fold", "split")
    return schemas.from_rows([dict(zip(keys, r, strict=True)) for r in rows], splits.SPLITS)


def _clip(cid, corpus, subject=None, sha=None, frame=None):
    return {"clip_id": cid, "corpus": corpus, "native_id": cid, "media_path": cid, "media_form": "video",
            "sha256": sha or _sha(cid), "size_bytes": 1, "license": "x", "subject_id": subject,
            "frame_hash": frame}  # fmt: skip


def test_leaks_find_a_subject_the_same_bytes_and_cross_corpus_near_duplicates():
    clips = schemas.from_rows(
        [
            _clip("footage:a", "footage", "footage:p1"),
            _clip("footage:b", "footage", "footage:p1"),  # the same person in both parts of fold 1
            _clip("footage:c", "footage", "footage:p2", sha=_sha("same")),
            _clip("footage:d", "footage", "footage:p3", sha=_sha("same")),  # the same bytes in both parts
            _clip("dfew:1", "dfew", frame="00ff00ff00ff00ff"),
            _clip("mafw:9", "mafw", frame="00ff00ff00ff00ff"),  # MAFW's copy of a DFEW clip, re-encoded
            _clip("mafw:10", "mafw", frame="1111111111111111"),
        ],
        schemas.CLIPS,
    )
    table = _splits([
        ("footage:a", "footage", "subject_kfold", 1, "train"), ("footage:b", "footage", "subject_kfold", 1, "test"),
        ("footage:c", "footage", "subject_kfold", 1, "train"), ("footage:d", "footage", "subject_kfold", 1, "test"),
        ("dfew:1", "dfew", "official_5fold", 1, "test"), ("mafw:9", "mafw", "official_5fold", 1, "train"),
        ("mafw:10", "mafw", "official_5fold", 1, "test"),
    ])  # fmt: skip
    leaks = {(r["kind"], r["key"]): r for r in splits.leaks(table, clips).to_pylist()}
    assert leaks[("subject", "footage:p1")]["train_clip_ids"] == ["footage:a"]
    assert leaks[("sha256", _sha("same"))]["test_clip_ids"] == ["footage:d"]
    near = leaks[("near_duplicate", "00ff00ff00ff00ff")]
    assert (near["corpus"], near["test_clip_ids"], near["train_clip_ids"]) == ("dfew", ["dfew:1"], ["mafw:9"])
    assert len(leaks) == 3
    assigned = {"dfew:1": "test", "mafw:9": "train", "mafw:10": "test"}
    assert splits.near_duplicate_train_clips(assigned, clips) == {"mafw:9"}  # what an export leaves out


def test_built_protocols_never_leak():
    clips = pa.concat_tables([ravdess_clips(range(1, 9)), _footage(12)])
    leaks = splits.leaks(splits.build(clips, subject_folds=4), clips)
    assert leaks.num_rows == 0


def test_choose_names_what_is_missing():
    table = splits.build(ravdess_clips(range(1, 5)))
    assert splits.choose(table, None, 1, ["ravdess"]) == {"ravdess": splits.ACTOR_6FOLD}
    with pytest.raises(splits.SplitError, match=r"fold 2 is not in ravdess's actor_6fold protocol \(its folds: 1\)"):
        splits.choose(table, None, 2, ["ravdess"])
    with pytest.raises(splits.SplitError, match="protocol 'official_5fold' is not in this version"):
        splits.choose(table, "official_5fold", 1, ["ravdess"])
    assert splits.choose(table, splits.LOAO, 4, ["ravdess"]) == {"ravdess": splits.LOAO}


def test_an_old_versions_fused_labels_still_export(tmp_path):
    """A version published before the rename (fused_labels v1: label, label_source) still gives training labels."""
    import json

    import pyarrow.parquet as pq

    from emopipe.dataset import Dataset, DatasetWriter
    from emopipe.exports import plan

    clips = ravdess_clips(range(1, 3))
    n = clips.num_rows
    old = pa.table({
        "clip_id": clips["clip_id"], "corpus": clips["corpus"], "human_label": clips["label"],
        "model_label": pa.nulls(n, pa.string()), "model_confidence": pa.nulls(n, pa.float32()),
        "label": clips["label"], "label_source": pa.array(["human"] * n), "disagreement": pa.nulls(n, pa.bool_()),
    })  # fmt: skip
    with DatasetWriter(tmp_path / "ds", corpora={"ravdess": str(tmp_path)}) as writer:
        writer.write_table("clips", clips)
        writer.write_table("quarantine", schemas.QUARANTINE.empty_table())
        writer.commit()
    pq.write_table(old, tmp_path / "ds" / "fused_labels.parquet")  # as the first schema wrote it
    manifest = tmp_path / "ds" / "dataset.json"
    data = json.loads(manifest.read_text())
    data["tables"]["fused_labels"] = {"file": "fused_labels.parquet", "rows": n, "schema_version": "1"}
    manifest.write_text(json.dumps(data))
    todo = plan.build(Dataset.open(tmp_path / "ds"), protocol=splits.LOAO, fold=1, forgotten={})
    assert {i.label_source for i in todo.all_items()} == {"human"} and len(todo.all_items()) == n
    assert todo.splits_source.startswith("computed at export")  # that version had no splits table either
