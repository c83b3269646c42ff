"""Agreement of model labels with human labels: WAR, UAR, coverage, per corpus and over all corpora."""

import pyarrow as pa
import pytest

from emopipe import schemas
from emopipe.stages import agreement as ag

# ravdess: 10 clips, 3 classes, imbalanced (6 anger, 3 sadness, 1 fear)
RAVDESS_TRUTH = ["anger"] * 6 + ["sadness"] * 3 + ["fear"]
# "m": anger 5/6 right (one called sadness), sadness 1/3 right (two called anger), the fear clip called anger
RAVDESS_M = ["anger"] * 5 + ["sadness"] + ["sadness", "anger", "anger"] + ["anger"]
# "cautious": abstains (None) where "m" was wrong, and gets the fear clip right
RAVDESS_CAUTIOUS = ["anger"] * 5 + [None] + ["sadness", None, None] + ["fear"]
# dfew: 4 clips, 3 happiness and 1 neutral; "m" gets one happiness and the neutral clip right
DFEW_TRUTH = ["happiness"] * 3 + ["neutral"]
DFEW_M = ["happiness", "neutral", "neutral", "neutral"]


def _clips(by_corpus):
    rows = [(f"{corpus}:{i}", corpus, label) for corpus, truth in by_corpus.items() for i, label in enumerate(truth)]
    return pa.table({k: list(v) for k, v in zip(("clip_id", "corpus", "label"), zip(*rows, strict=True), strict=True)})


def _labels(by_labeler):
    """{labeler: {corpus: [label per clip]}} -> the labels table."""
    rows = [
        (f"{corpus}:{i}", labeler, label)
        for labeler, by_corpus in by_labeler.items()
        for corpus, preds in by_corpus.items()
        for i, label in enumerate(preds)
    ]
    return pa.table(
        {
            "clip_id": pa.array([r[0] for r in rows], pa.string()),
            "labeler": pa.array([r[1] for r in rows], pa.string()),
            "label": pa.array([r[2] for r in rows], pa.string()),
        }
    )


def _by_key(table):
    return {(r["corpus"], r["labeler"]): r for r in table.to_pylist()}


def test_war_and_uar_differ_on_an_imbalanced_corpus():
    out = ag.agreement(_clips({"ravdess": RAVDESS_TRUTH}), _labels({"m": {"ravdess": RAVDESS_M}}))
    assert out.schema.equals(ag.AGREEMENT, check_metadata=True)
    row = _by_key(out)["ravdess", "m"]
    assert (row["n_clips"], row["n_answered"], row["coverage"]) == (10, 10, 1.0)
    # WAR = correct / clips = (5 anger + 1 sadness + 0 fear) / 10
    assert row["war"] == pytest.approx(6 / 10)
    # UAR = mean recall = (5/6 + 1/3 + 0/1) / 3 = (7/6) / 3 = 7/18 ~ 0.389, well below WAR: anger dominates WAR
    assert row["uar"] == pytest.approx(7 / 18)
    # everything answered: the answered-only metrics are the same
    assert row["war_answered"] == pytest.approx(6 / 10)
    assert row["uar_answered"] == pytest.approx(7 / 18)
    assert row["classes"] == ["sadness", "anger", "fear"]  # canonical order
    assert schemas.as_dict(row["per_class_recall"]) == pytest.approx({"sadness": 1 / 3, "anger": 5 / 6, "fear": 0.0})


def test_abstentions_count_as_wrong_but_not_in_the_answered_metrics():
    out = ag.agreement(_clips({"ravdess": RAVDESS_TRUTH}), _labels({"cautious": {"ravdess": RAVDESS_CAUTIOUS}}))
    row = _by_key(out)["ravdess", "cautious"]
    # 3 abstentions out of 10
    assert (row["n_clips"], row["n_answered"], row["coverage"]) == (10, 7, pytest.approx(0.7))
    # WAR = (5 anger + 1 sadness + 1 fear) / 10; the abstentions are wrong
    assert row["war"] == pytest.approx(7 / 10)
    # UAR = (5/6 + 1/3 + 1/1) / 3 = (13/6) / 3 = 13/18
    assert row["uar"] == pytest.approx(13 / 18)
    assert schemas.as_dict(row["per_class_recall"]) == pytest.approx({"sadness": 1 / 3, "anger": 5 / 6, "fear": 1.0})
    # every answer it gave is right
    assert row["war_answered"] == pytest.approx(1.0)
    assert row["uar_answered"] == pytest.approx(1.0)


def test_two_corpora_and_all():
    clips = _clips({"ravdess": RAVDESS_TRUTH, "dfew": DFEW_TRUTH})
    labels = _labels(
        {"m": {"ravdess": RAVDESS_M, "dfew": DFEW_M}, "cautious": {"ravdess": RAVDESS_CAUTIOUS}},
    )
    out = ag.agreement(clips, labels)
    keys = list(zip(out["corpus"].to_pylist(), out["labeler"].to_pylist(), strict=True))
    assert keys == [("ALL", "cautious"), ("ALL", "m"), ("dfew", "m"), ("ravdess", "cautious"), ("ravdess", "m")]
    rows = _by_key(out)

    dfew = rows["dfew", "m"]
    # WAR = (1 happiness + 1 neutral) / 4; UAR = (1/3 + 1/1) / 2 = 2/3
    assert (dfew["n_clips"], dfew["war"], dfew["uar"]) == (4, pytest.approx(2 / 4), pytest.approx(2 / 3))
    assert dfew["classes"] == ["neutral", "happiness"]

    total = rows["ALL", "m"]
    assert total["n_clips"] == 14
    # WAR = (6 right on ravdess + 2 on dfew) / 14 = 4/7
    assert total["war"] == pytest.approx(8 / 14)
    # UAR over the 5 classes present: neutral 1/1, happiness 1/3, sadness 1/3, anger 5/6, fear 0/1
    # = (1 + 1/3 + 1/3 + 5/6 + 0) / 5 = 2.5 / 5 = 1/2
    assert total["uar"] == pytest.approx(1 / 2)
    assert total["classes"] == ["neutral", "happiness", "sadness", "anger", "fear"]

    # a labeler that ran on one corpus only: its ALL row is that corpus's row
    cautious_all, cautious_ravdess = rows["ALL", "cautious"], rows["ravdess", "cautious"]
    assert {k: v for k, v in cautious_all.items() if k != "corpus"} == {
        k: v for k, v in cautious_ravdess.items() if k != "corpus"
    }


def test_a_corpus_the_model_never_answers():
    clips = _clips({"ravdess": RAVDESS_TRUTH, "mafw": ["anxiety", "contempt", "anxiety"]})
    labels = _labels({"m": {"ravdess": RAVDESS_M, "mafw": [None, None, None]}})
    rows = _by_key(ag.agreement(clips, labels))
    mafw = rows["mafw", "m"]
    assert (mafw["n_clips"], mafw["n_answered"], mafw["coverage"]) == (3, 0, 0.0)
    assert (mafw["war"], mafw["uar"]) == (0.0, 0.0)
    assert mafw["war_answered"] is None
    assert mafw["uar_answered"] is None
    assert schemas.as_dict(mafw["per_class_recall"]) == {"contempt": 0.0, "anxiety": 0.0}
    # ALL: 13 clips, 10 answered; WAR = 6 / 13; answered-only WAR = 6 / 10 as on ravdess
    total = rows["ALL", "m"]
    assert (total["n_clips"], total["n_answered"]) == (13, 10)
    assert total["coverage"] == pytest.approx(10 / 13)
    assert total["war"] == pytest.approx(6 / 13)
    assert total["war_answered"] == pytest.approx(6 / 10)
    # UAR over 5 classes: sadness 1/3, anger 5/6, fear 0, contempt 0, anxiety 0 = (7/6) / 5 = 7/30
    assert total["uar"] == pytest.approx(7 / 30)
    assert total["uar_answered"] == pytest.approx(7 / 18)


def test_clips_without_a_human_label_are_left_out():
    # two unlabelled ravdess clips the model calls anger, and a label row for a clip that is not in `clips`
    clips = _clips({"ravdess": [*RAVDESS_TRUTH, None, None]})
    labels = _labels({"m": {"ravdess": [*RAVDESS_M, "anger", "anger", "anger"]}})
    rows = _by_key(ag.agreement(clips, labels))
    assert set(rows) == {("ALL", "m"), ("ravdess", "m")}
    row = rows["ravdess", "m"]
    assert (row["n_clips"], row["war"], row["uar"]) == (10, pytest.approx(6 / 10), pytest.approx(7 / 18))


def test_only_unlabelled_clips_give_an_empty_table():
    out = ag.agreement(_clips({"ravdess": [None, None]}), _labels({"m": {"ravdess": ["anger", None]}}))
    assert out.num_rows == 0
    assert out.schema.equals(ag.AGREEMENT, check_metadata=True)


def test_duplicate_label_rows_are_rejected():
    labels = _labels({"m": {"ravdess": ["anger"]}})
    with pytest.raises(ValueError, match="more than one row"):
        ag.agreement(_clips({"ravdess": ["anger"]}), pa.concat_tables([labels, labels]))


def test_kappa_matches_a_hand_computation():
    out = ag.agreement(
        _clips({"ravdess": RAVDESS_TRUTH}),
        _labels({"m": {"ravdess": RAVDESS_M}, "cautious": {"ravdess": RAVDESS_CAUTIOUS}}),
    )
    rows = _by_key(out)
    # "m": human anger 6, sadness 3, fear 1 (of 10); model anger 8, sadness 2, fear 0
    # po = observed agreement = WAR = 6/10
    # pe = chance agreement = 0.6 * 0.8 (anger) + 0.3 * 0.2 (sadness) + 0.1 * 0.0 (fear) = 0.48 + 0.06 = 0.54
    # kappa = (po - pe) / (1 - pe) = 0.06 / 0.46 = 3/23 ~ 0.130
    assert rows["ravdess", "m"]["kappa"] == pytest.approx(3 / 23)
    # "cautious": model anger 5, sadness 1, fear 1, abstained 3 (abstention is its own class, never a human label)
    # po = 7/10
    # pe = 0.6 * 0.5 (anger) + 0.3 * 0.1 (sadness) + 0.1 * 0.1 (fear) + 0.0 * 0.3 (abstained)
    #    = 0.30 + 0.03 + 0.01 = 0.34
    # kappa = (0.7 - 0.34) / (1 - 0.34) = 0.36 / 0.66 = 6/11 ~ 0.545
    assert rows["ravdess", "cautious"]["kappa"] == pytest.approx(6 / 11)


def test_kappa_is_null_for_a_single_class_corpus():
    # solo: every human label is anger; kappa would be 0 for "m" (po = pe = 3/4) and 0/0 for "perfect"
    clips = _clips({"ravdess": RAVDESS_TRUTH, "solo": ["anger"] * 4})
    labels = _labels(
        {
            "m": {"ravdess": RAVDESS_M, "solo": ["anger", "anger", "anger", "sadness"]},
            "perfect": {"solo": ["anger"] * 4},
        }
    )
    rows = _by_key(ag.agreement(clips, labels))
    assert rows["solo", "m"]["kappa"] is None
    assert rows["solo", "perfect"]["kappa"] is None
    assert rows["ALL", "perfect"]["kappa"] is None
    assert rows["solo", "m"]["war"] == pytest.approx(3 / 4)  # the other metrics are still there
    assert rows["ALL", "m"]["kappa"] is not None  # over both corpora there are three human classes


def test_confusion_matrix_layout():
    # the fear clip called "surprise", a class no human gave: it gets a column rather than dropping out
    preds = ["anger"] * 5 + [None] + ["sadness", None, "anger"] + ["surprise"]
    classes, columns, matrix = ag._confusion(RAVDESS_TRUTH, preds)
    assert classes == ["sadness", "anger", "fear"]
    assert columns == ["sadness", "anger", "fear", "surprise", ag.ABSTAIN]
    assert matrix.tolist() == [
        [1, 1, 0, 0, 1],  # sadness
        [0, 5, 0, 0, 1],  # anger
        [0, 0, 0, 1, 0],  # fear
    ]


def test_confusion_png(tmp_path):
    from matplotlib import image

    clips = _clips({"ravdess": RAVDESS_TRUTH, "dfew": DFEW_TRUTH})
    labels = _labels({"m@1": {"ravdess": RAVDESS_M, "dfew": DFEW_M}, "cautious@2": {"ravdess": RAVDESS_CAUTIOUS}})
    for labeler, corpus in (("m@1", "ravdess"), ("cautious", "ravdess"), ("m", None)):
        path = ag.confusion_png(clips, labels, labeler, corpus, tmp_path / "plots" / f"{labeler}-{corpus}.png")
        assert path.read_bytes()[:4] == b"\x89PNG"
        height, width, _ = image.imread(path).shape
        assert height >= 200 and width >= 300
    with pytest.raises(ValueError, match="no clip with a human label"):
        ag.confusion_png(clips, labels, "cautious", "dfew", tmp_path / "x.png")
    with pytest.raises(ValueError, match="known labelers"):
        ag.confusion_png(clips, labels, "nobody", None, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_metrics_json():
    import json

    clips = _clips({"ravdess": RAVDESS_TRUTH, "dfew": DFEW_TRUTH, "solo": ["anger"] * 2})
    labels = _labels(
        {
            "m": {"ravdess": RAVDESS_M, "dfew": DFEW_M, "solo": ["anger", None]},
            "cautious": {"ravdess": RAVDESS_CAUTIOUS},
        }
    )
    metrics = ag.metrics_json(ag.agreement(clips, labels))
    assert set(metrics) == {"m", "cautious"}
    assert set(metrics["m"]) == {"ALL", "dfew", "ravdess", "solo"}
    assert set(metrics["cautious"]) == {"ALL", "ravdess"}
    assert metrics["m"]["ravdess"] == {"war": 0.6, "uar": 0.388889, "kappa": 0.130435, "coverage": 1.0, "n_clips": 10}
    assert metrics["m"]["solo"] == {"war": 0.5, "uar": 0.5, "kappa": None, "coverage": 0.5, "n_clips": 2}
    assert json.loads(json.dumps(metrics)) == metrics
