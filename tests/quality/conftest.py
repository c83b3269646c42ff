"""One real gate run over tables built to break every kind of expectation in quality/*.yaml, shared by the tests of
the validation page and of the words (Great Expectations runs once per session: it is the slow part)."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from emopipe import schemas

HOSTILE = "<script>alert(1)</script>"  # a footage sidecar's gender / age_group value


@dataclass
class GateRun:
    """The gate's result over `tables`, with Data Docs under `work_dir`."""

    result: object
    tables: dict[str, pa.Table]
    work_dir: pathlib.Path


def _clips() -> pa.Table:
    """12 clips (min_clips is 20 below): every clips expectation broken once, a hostile gender value, a type drift."""
    good = {
        "corpus": "footage",
        "media_form": "video",
        "size_bytes": 1000,
        "license": "CC-BY-4.0",
        "label": "happiness",
        "duration_s": 3.0,
        "fps": 25.0,
        "width": 320,
        "height": 240,
        "has_audio": True,
        "has_video": True,
        "gender": "female",
        "gender_source": "annotated",
    }
    rows = [
        {**good, "clip_id": f"footage:{i:02d}", "native_id": f"{i:02d}", "media_path": f"{i:02d}.mp4",
         "sha256": f"{i:064x}"}
        for i in range(12)
    ]  # fmt: skip
    rows[1]["clip_id"] = rows[0]["clip_id"]  # a duplicate id
    rows[2]["sha256"] = rows[3]["sha256"]  # the same bytes twice in one corpus
    rows[4]["sha256"] = "not-a-checksum"
    rows[5]["label"] = "joy"  # outside the taxonomy
    rows[6].update(gender=HOSTILE, gender_source=HOSTILE)
    rows[7].update(duration_s=0.05, fps=2.0)  # too short, too few frames per second
    rows[8].update(height=8, size_bytes=0)
    rows[9]["error"] = "unreadable_media"
    rows[10]["has_audio"] = None  # never probed
    rows[11]["label"] = None  # unlabelled: a warning
    table = schemas.from_rows(rows, schemas.CLIPS)
    # a file written by another tool: width as text, and a declared column missing
    table = table.set_column(table.schema.get_field_index("width"), "width", pc.cast(table["width"], pa.string()))
    return table.drop_columns(["accent"])


def _tables() -> dict[str, pa.Table]:
    s = schemas.load_schema
    fold = {"corpus": "dfew", "split": "test"}
    return {
        "clips": _clips(),
        "class_balance": schemas.from_rows(
            [
                {"corpus": "ravdess", "label": "happiness", "count": 97, "share": 0.97},
                {"corpus": "ravdess", "label": "fear", "count": 3, "share": 0.03},
                {"corpus": "ravdess", "label": "disgust", "count": 0, "share": 0.0},
            ],
            s("class_balance"),
        ),
        "balance_summary": schemas.from_rows(
            [
                {
                    "corpus": "ravdess",
                    "n_clips": 100,
                    "n_labelled": 100,
                    "n_classes": 3,
                    "smallest_class": "disgust",
                    "min_share": 0.0,
                    "largest_class": "happiness",
                    "imbalance_ratio": None,
                    "divergence": 0.6,
                },
                {
                    "corpus": "dfew",
                    "n_clips": 100,
                    "n_labelled": 100,
                    "n_classes": 2,
                    "smallest_class": "anger",
                    "min_share": 0.05,
                    "largest_class": "sadness",
                    "imbalance_ratio": 19.0,
                    "divergence": 0.2,
                },
            ],
            s("balance_summary"),
        ),  # fmt: skip
        "fold_balance": schemas.from_rows(
            [
                {
                    **fold,
                    "fold": 2,
                    "n_labelled": 210,
                    "smallest_class": "fear",
                    "min_share": 0.02,
                    "imbalance_ratio": 36.0,
                    "divergence": 0.41,
                },
                {
                    **fold,
                    "fold": 3,
                    "n_labelled": 40,
                    "smallest_class": "fear",
                    "min_share": 0.0,
                    "imbalance_ratio": None,
                    "divergence": 0.5,
                },
            ],
            s("fold_balance"),
        ),  # fmt: skip
        "representation": schemas.from_rows(
            [
                {
                    "corpus": "footage",
                    "attribute": "gender",
                    "group": "female",
                    "sources": "annotated",
                    "count": 95,
                    "share": 0.95,
                    "n_unknown": 12,
                },
                {
                    "corpus": "footage",
                    "attribute": "gender",
                    "group": HOSTILE,
                    "sources": "annotated",
                    "count": 5,
                    "share": 0.05,
                    "n_unknown": 12,
                },
            ],
            s("representation"),
        ),  # fmt: skip
        "near_duplicates": schemas.from_rows(
            [{"frame_hash": "ab" * 8, "corpora": ["dfew", "mafw"], "clip_ids": ["dfew:00001", "mafw:00042"]}],
            s("near_duplicates"),
        ),
        "extraction": schemas.from_rows(
            [
                {
                    "clip_id": f"ravdess:{i:02d}",
                    "corpus": "ravdess",
                    "extractor_version": "x@1",
                    "n_sampled": 16,
                    "face_share": 0.1,
                    "n_log_mel_bins": 40 if i == 0 else 80,
                    "n_egemaps": 88,
                    "error": "decode_failed" if i < 3 else None,
                }
                for i in range(20)
            ],
            s("extraction"),
        ),  # fmt: skip
        "labels": schemas.from_rows(
            [
                {
                    "clip_id": "ravdess:00",
                    "corpus": "ravdess",
                    "sha256": "0" * 64,
                    "labeler": "fer@1",
                    "label": "joy",
                    "confidence": 1.5,
                },
                {
                    "clip_id": "ravdess:00",
                    "corpus": "ravdess",
                    "sha256": "0" * 64,
                    "labeler": "fer@1",
                    "label": None,
                    "abstain_reason": "felt_lazy",
                    "error": "model_crashed",
                },
            ],
            s("labels"),
        ),  # fmt: skip
        "agreement": schemas.from_rows(
            [
                {
                    "corpus": "ravdess",
                    "labeler": "fer@1",
                    "n_clips": 192,
                    "n_answered": 64,
                    "coverage": 0.33,
                    "war": 0.125,
                    "uar": 0.125,
                    "classes": ["happiness", "sadness"],
                    "per_class_recall": [("happiness", 0.25), ("sadness", 0.0)],
                },
            ],
            s("agreement"),
        ),  # fmt: skip
        "fused_labels": schemas.from_rows(
            [
                {
                    "clip_id": f"ravdess:{i:03d}",
                    "corpus": "ravdess",
                    "human_label": "sadness" if i % 2 else "anger",
                    "model_label": "happiness" if i < 168 else ("sadness" if i % 2 else "anger"),
                    "train_label_source": "human",
                    "train_label": "sadness" if i % 2 else "anger",
                    "disagreement": i < 168,
                }
                for i in range(192)
            ]
            + [{"clip_id": "ravdess:999", "corpus": "ravdess", "train_label_source": "oracle"}],
            s("fused_labels"),
        ),  # fmt: skip
        "label_dependence": schemas.from_rows(
            [
                {
                    "corpus": "dfew",
                    "attribute": "gender",
                    "attribute_sources": "estimated",
                    "n_clips": 200,
                    "groups": ["female", "male"],
                    "classes": ["anger", "sadness"],
                    "chi2": 14.0,
                    "dof": 1,
                    "p_value": 0.0002,
                    "cramers_v": 0.25,
                    "max_gap": 0.2,
                    "max_gap_class": "anger",
                    "max_gap_groups": "female > male",
                    "max_gap_shares": "0.30 vs 0.10",
                    "min_cell_count": 5,
                    "testable": True,
                },
            ],
            s("label_dependence"),
        ),  # fmt: skip
        "model_parity": schemas.from_rows(
            [
                {
                    "corpus": "dfew",
                    "labeler": "fer@1",
                    "attribute": "gender",
                    "attribute_sources": "annotated",
                    "groups": ["female", "male"],
                    "recall_ratio": 0.5,
                    "worst_group": "male",
                    "demographic_parity_ratio": 0.5,
                    "equalized_odds_difference": 0.6,
                    "face_hit_ratio": 0.4,
                    "testable": True,
                    **{
                        k: [("female", v), ("male", w)]
                        for k, v, w in (
                            ("n_per_group", 100, 100),
                            ("recall_per_group", 0.8, 0.4),
                            ("accuracy_per_group", 0.8, 0.4),
                            ("negative_rate_per_group", 0.6, 0.3),
                        )
                    },
                },
            ],
            s("model_parity"),
        ),  # fmt: skip
    }


@pytest.fixture(scope="session")
def hostile_gate(tmp_path_factory: pytest.TempPathFactory) -> GateRun:
    """The real gate (GX checkpoints, Data Docs built) over tables that break every kind of expectation."""
    pytest.importorskip("great_expectations")
    from emopipe.config import Params, ValidateConfig
    from emopipe.quality.validate import validate_tables

    work = tmp_path_factory.mktemp("gate")
    tables = _tables()
    params = Params(work_dir=work, validate=ValidateConfig(min_clips=20))
    return GateRun(validate_tables(tables, params, run_name="hostile"), tables, work)
