"""The agreement table in the seeds' form: one row per labeler, WAR and UAR per corpus, next to R1-Omni's figures."""

import pyarrow as pa

from emopipe.stages import agreement as ag


def _table():
    # ravdess: 4 angry clips, 2 sad; "r1" gets 3 angry ones right, abstains on one, calls both sad clips angry
    clips = pa.table(
        {
            "clip_id": [f"ravdess:{i}" for i in range(6)] + ["footage:0", "footage:1"],
            "corpus": ["ravdess"] * 6 + ["footage"] * 2,
            "label": ["anger"] * 4 + ["sadness"] * 2 + ["happiness", None],
        }
    )
    labels = pa.table(
        {
            "clip_id": [f"ravdess:{i}" for i in range(6)] + ["footage:0", "footage:1"],
            "labeler": ["r1@abc"] * 8,
            "label": ["anger", "anger", "anger", None, "anger", "anger", "happiness", "sadness"],
        }
    )
    return ag.agreement(clips, labels)


def test_one_row_per_labeler_with_war_and_uar_per_corpus_then_the_published_row():
    table = ag.comparison(_table())
    rows = table.to_pylist()
    assert [r["method"] for r in rows] == ["r1@abc", ag.PUBLISHED_METHOD]
    names = [n for n in table.column_names if n.endswith(("_war", "_uar"))]
    assert names == ["dfew_war", "dfew_uar", "mafw_war", "mafw_uar", "ravdess_war", "ravdess_uar",
                     "footage_war", "footage_uar"]  # fmt: skip
    r1, published = rows
    assert r1["ravdess_war"] == 50.0  # 3 of 6 (the abstention counts as wrong)
    assert r1["ravdess_uar"] == 37.5  # anger 3/4, sadness 0/2
    assert (r1["ravdess_n"], r1["ravdess_coverage"]) == (6, 5 / 6)
    assert (r1["footage_war"], r1["footage_n"]) == (100.0, 1)  # the unlabelled footage clip is not counted
    assert r1["dfew_war"] is None and r1["dfew_n"] is None  # no DFEW clips in this dataset
    assert (published["dfew_war"], published["dfew_uar"]) == (65.83, 56.27)
    assert (published["mafw_war"], published["mafw_uar"]) == (57.68, 40.04)
    assert (published["ravdess_war"], published["ravdess_uar"]) == (43.00, 44.69)
    assert published["footage_war"] is None and published["published"] and not r1["published"]


def test_the_markdown_is_the_seeds_table_with_counts_underneath():
    text = ag.comparison_markdown(ag.comparison(_table()))
    lines = text.splitlines()
    assert lines[0] == (
        "| Method | DFEW (WAR) | DFEW (UAR) | MAFW (WAR) | MAFW (UAR) | RAVDESS (WAR) | RAVDESS (UAR) | footage (WAR) "
        "| footage (UAR) |"
    )
    assert lines[2] == "| r1@abc | – | – | – | – | 50.00 | 37.50 | 100.00 | 100.00 |"
    assert lines[3] == "| R1-Omni (published) | 65.83 | 56.27 | 57.68 | 40.04 | 43.00 | 44.69 | – | – |"
    assert "- r1@abc: RAVDESS 6 clips (83% answered), footage 1 clips (100% answered)" in lines


def test_no_published_row_when_asked_and_an_empty_table_keeps_its_columns():
    table = ag.comparison(_table(), published={})
    assert table.column("method").to_pylist() == ["r1@abc"]
    empty = ag.comparison(ag.AGREEMENT.empty_table(), published={})
    assert empty.num_rows == 0 and "ravdess_uar" in empty.column_names
