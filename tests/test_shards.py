"""Content-addressed shards and the dataset folder: what a refresh rewrites, what it keeps, what readers see."""

import hashlib
import pathlib
import subprocess
import sys

import pyarrow as pa
import pytest

from emopipe import schemas, shards
from emopipe.dataset import SHARDED, Dataset, DatasetWriter, rows_digest, schema_of

LAYOUT = shards.Layout(keys=("clip_id",), max_rows=8, row_group=4, small_shards=2)


def _clips(n: int, start: int = 0) -> pa.Table:
    rows = [
        {"clip_id": f"footage:c{i:04d}", "corpus": "footage", "native_id": f"c{i:04d}", "media_path": f"c{i:04d}.mp4",
         "media_form": "video", "sha256": hashlib.sha256(str(i).encode()).hexdigest(), "size_bytes": 100 + i,
         "license": "CC BY 4.0", "label": ["happiness", "sadness", None][i % 3]}
        for i in range(start, start + n)
    ]  # fmt: skip
    return schemas.from_rows(rows, schemas.CLIPS)


def _sha(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_shard_is_named_by_its_bytes_and_the_same_rows_give_the_same_file(tmp_path):
    table = _clips(20)
    a = shards.write_table(table, tmp_path / "a", schemas.CLIPS, LAYOUT)
    shuffled = table.take(pa.array(list(range(19, -1, -1))))  # same rows, other order and chunking
    chunked = pa.concat_tables([shuffled.slice(0, 7), shuffled.slice(7)])
    b = shards.write_table(chunked, tmp_path / "b", schemas.CLIPS, LAYOUT)
    assert [s.rows for s in a] == [8, 8, 4]
    assert [s.name for s in a] == [s.name for s in b]
    for s in a:
        assert s.name == f"part-{_sha(tmp_path / 'a' / s.name)[:16]}.parquet"


def test_refresh_with_new_rows_keeps_every_old_shard_and_writes_only_new_ones(tmp_path):
    with DatasetWriter(tmp_path / "v1", corpora={"footage": "/data"}) as w:
        w.write_table("clips", _clips(2 * SHARDED["clips"].max_rows))
        v1 = w.commit()
    before = {p.name: _sha(p) for p in v1.files("clips")}
    grown = pa.concat_tables([v1.clips, _clips(5, start=10_000)])
    with DatasetWriter(tmp_path / "v2", corpora={"footage": "/data"}) as w:
        w.write_table("clips", grown, previous=v1)
        v2 = w.commit()
    after = {p.name: _sha(p) for p in v2.files("clips")}
    assert set(before) < set(after) and len(after) == len(before) + 1  # one new shard, the old ones untouched
    assert all(after[name] == digest for name, digest in before.items())
    assert (tmp_path / "v2" / "clips" / next(iter(before))).stat().st_ino == (
        tmp_path / "v1" / "clips" / next(iter(before))
    ).stat().st_ino  # hard-linked, not rewritten
    assert v2.clips.num_rows == grown.num_rows and v2.rows("clips") == grown.num_rows


def test_removing_a_row_rewrites_only_the_shard_that_held_it(tmp_path):
    big = shards.Layout(keys=("clip_id",), max_rows=8, row_group=4)
    table = _clips(24)
    first = {s.name for s in shards.write_table(table, tmp_path / "t", schemas.CLIPS, big)}
    gone = table["clip_id"][3].as_py()
    carry = shards.plan_carry(
        tmp_path / "t", [shards.Shard(n, 8) for n in sorted(first)], schema=schemas.CLIPS, layout=big,
        keep=lambda t: pa.array([c != gone for c in t["clip_id"].to_pylist()]), columns=["clip_id"],
    )  # fmt: skip
    assert len(carry.kept) == 2 and len(carry.partial) == 1
    rewritten = list(shards.carried_rows(carry, schemas.CLIPS, big))
    assert sum(t.num_rows for t in rewritten) == 7 and gone not in pa.concat_tables(rewritten)["clip_id"].to_pylist()


def test_many_small_shards_are_compacted(tmp_path):
    table = _clips(3)
    names = []
    for i in range(4):  # four refreshes of one row each
        names += shards.write_table(table.slice(i % 3, 1).set_column(0, "clip_id", pa.array([f"x:{i}"])), tmp_path,
                                    schemas.CLIPS, LAYOUT)  # fmt: skip
    carry = shards.plan_carry(
        tmp_path, names, schema=schemas.CLIPS, layout=LAYOUT, keep=lambda t: pa.array([True] * t.num_rows)
    )
    assert carry.kept == [] and len(carry.partial) == 4  # more than small_shards tiny ones: merged into one write
    merged = pa.concat_tables(list(shards.carried_rows(carry, schemas.CLIPS, LAYOUT)))
    assert merged["clip_id"].to_pylist() == ["x:0", "x:1", "x:2", "x:3"]


def test_digest_does_not_depend_on_sharding(tmp_path):
    table = _clips(40)
    other = table.take(pa.array(list(range(39, -1, -1))))
    assert rows_digest(table) == rows_digest(other)
    with DatasetWriter(tmp_path / "a", corpora={}) as w:
        w.write_table("clips", table)
        w.write_table("quarantine", schemas.from_rows([], schemas.QUARANTINE))
        a = w.commit()
    with DatasetWriter(tmp_path / "b", corpora={}) as w:  # the same rows in four shards instead of one
        written = []
        for i in range(4):
            written += shards.write_table(other.slice(i * 10, 10), w.tmp / "clips", schemas.CLIPS, SHARDED["clips"])
        w.add_shards("clips", written)
        w.write_table("quarantine", schemas.from_rows([], schemas.QUARANTINE))
        b = w.commit()
    assert len(a.files("clips")) != len(b.files("clips"))
    assert a.clips.num_rows == b.clips.num_rows == 40
    assert a.digest == b.digest


def test_each_table_is_read_once_and_the_first_layout_still_reads(tmp_path):
    import pyarrow.parquet as pq

    legacy = tmp_path / "legacy"
    legacy.mkdir()
    pq.write_table(_clips(5), legacy / "clips.parquet")
    pq.write_table(schemas.from_rows([], schemas.QUARANTINE), legacy / "quarantine.parquet")
    (legacy / "source.json").write_text('{"corpora": {"footage": "/data/footage"}}')
    ds = Dataset.open(legacy)
    assert ds.layout == 1 and ds.corpora == {"footage": pathlib.Path("/data/footage")}
    for _ in range(3):
        assert ds.clips.num_rows == 5
        ds.digest  # noqa: B018 - reads the tables it hashes
    assert ds.reads["clips"] == 1 and ds.reads["quarantine"] == 1
    with DatasetWriter(tmp_path / "migrated", corpora=ds.corpora) as w:
        w.pass_through(ds)  # the first layout's clips become shards once
        new = w.commit()
    assert new.layout == 2 and new.shards("clips") and new.digest == ds.digest


def test_a_second_writer_of_the_same_folder_is_refused_and_a_failed_write_leaves_the_old_folder(tmp_path):
    with DatasetWriter(tmp_path / "out", corpora={}) as w:
        w.write_table("clips", _clips(3))
        w.write_table("quarantine", schemas.from_rows([], schemas.QUARANTINE))
        w.commit()
    first = DatasetWriter(tmp_path / "out", corpora={})
    other = subprocess.run(  # another process writing the same folder meanwhile
        [sys.executable, "-c", "import sys; from emopipe.dataset import DatasetWriter; DatasetWriter(sys.argv[1], "
         "corpora={})", str(tmp_path / "out")], capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert other.returncode != 0 and "is being written by emopipe pid" in other.stderr
    first.abort()
    with pytest.raises(RuntimeError, match="boom"), DatasetWriter(tmp_path / "out", corpora={}) as w:
        w.write_table("clips", _clips(9))
        raise RuntimeError("boom")
    assert Dataset.open(tmp_path / "out").clips.num_rows == 3  # untouched
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # nothing half-written left behind
    assert schema_of("lineage").metadata[b"table"] == b"row_lineage"
