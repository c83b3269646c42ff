"""The table contracts: parsing, conform(), the snapshot that forces a version bump, and the taxonomy."""

import pathlib

import pyarrow as pa
import pytest

from emopipe import schemas

SNAPSHOTS = pathlib.Path(__file__).parent / "snapshots"
TABLES = [
    "clips", "quarantine", "class_balance", "balance_summary", "representation", "near_duplicates",
    "features", "extraction", "labels", "agreement", "fused_labels", "label_dependence", "model_parity",
    "fold_balance", "row_lineage", "splits", "split_leaks", "estimates", "instrument_audit", "attribute_coverage",
]  # fmt: skip


@pytest.mark.parametrize("table", TABLES)
def test_schema_matches_snapshot(table):
    """Changing a table's columns must be deliberate: update the snapshot and bump `version` in schemas/."""
    schema = schemas.load_schema(table)
    columns = schema.remove_metadata().to_string(show_field_metadata=False)
    text = f"version={schema.metadata[b'version'].decode()}\n{columns}\n"
    assert text == (SNAPSHOTS / f"{table}.txt").read_text()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("string", pa.string()),
        ("list<string>", pa.list_(pa.string())),
        # a map is stored as a list of {key, value} structs (Hugging Face datasets has no type for Arrow maps)
        (
            "map<string, int32>",
            pa.list_(pa.struct([pa.field("key", pa.string(), nullable=False), ("value", pa.int32())])),
        ),
        (
            "list<struct<fold: int8, split: string>>",
            pa.list_(pa.struct([("fold", pa.int8()), ("split", pa.string())])),
        ),
    ],
)
def test_parse_type(text, expected):
    assert schemas.parse_type(text) == expected


def test_map_columns_take_dicts_and_read_back_as_dicts():
    schema = pa.schema([("id", pa.string()), ("votes", schemas.parse_type("map<string, int32>"))])
    rows = [{"id": "a", "votes": {"Happy": 8, "Sad": 2}}, {"id": "b", "votes": [("Sad", 1)]}, {"id": "c"}]
    table = schemas.from_rows(rows, schema)
    values = table["votes"].to_pylist()
    assert [schemas.as_dict(v) for v in values] == [{"Happy": 8, "Sad": 2}, {"Sad": 1}, {}]
    assert values[0] == [{"key": "Happy", "value": 8}, {"key": "Sad", "value": 2}]  # entry order is kept
    # a dict whose keys are literally "key" and "value" is still a map of two entries, not one entry
    odd = schemas.from_rows([{"id": "d", "votes": {"key": 1, "value": 2}}], schema)
    assert schemas.as_dict(odd["votes"][0].as_py()) == {"key": 1, "value": 2}


def test_a_table_with_an_arrow_map_column_still_conforms():
    """Versions written before the change stored real Arrow maps: reading them casts to the stored-map type."""
    schema = pa.schema([("votes", schemas.parse_type("map<string, int32>"))])
    old = pa.table({"votes": pa.array([[("Happy", 3)], None], pa.map_(pa.string(), pa.int32()))})
    out = schemas.conform(old, schema)
    assert out.schema.equals(schema) and [schemas.as_dict(v) for v in out["votes"].to_pylist()] == [{"Happy": 3}, {}]


def test_parse_type_rejects_unknown():
    with pytest.raises(schemas.SchemaError, match="unknown type"):
        schemas.parse_type("decimal<3>")


def test_conform_orders_and_casts():
    schema = schemas.QUARANTINE
    table = pa.table(
        {
            "run_id": ["r"],
            "detail": ["d"],
            "reason": ["bad_name"],
            "stage": ["ingest"],
            "corpus": ["ravdess"],
            "path": ["a.mp4"],
            "extra": [1],
        }
    )
    out = schemas.conform(table, schema)
    assert out.schema.names == schema.names
    assert out.schema.equals(schema, check_metadata=True)
    assert out["sha256"].to_pylist() == [None]  # a nullable column added since the table was written reads as null


def test_conform_names_missing_columns():
    with pytest.raises(schemas.SchemaError, match=r"missing columns \['path'"):
        schemas.conform(pa.table({"corpus": ["x"]}), schemas.QUARANTINE)


def test_conform_rejects_nulls_in_non_nullable():
    rows = [{"path": None, "corpus": "ravdess", "stage": "ingest", "reason": "bad_name", "detail": "", "run_id": "r"}]
    with pytest.raises(schemas.SchemaError, match="path"):
        schemas.from_rows(rows, schemas.QUARANTINE)


def test_conform_rejects_wrong_type():
    balance = schemas.load_schema("class_balance")
    table = pa.table({"corpus": ["ravdess"], "label": ["calm"], "count": ["many"], "share": [0.5]})
    with pytest.raises(schemas.SchemaError):
        schemas.conform(table, balance)


def test_taxonomy_keeps_calm_apart_from_neutral():
    tax = schemas.taxonomy()
    mapping = tax.native_to_canonical("ravdess")
    assert mapping["calm"] == "calm" and mapping["neutral"] == "neutral"
    assert len(tax.classes("ravdess")) == 8
    assert set(mapping.values()) <= set(tax.canonical)


def test_every_quarantine_reason_is_documented():
    reasons = schemas.quarantine_reasons()
    assert {"bad_name", "code_out_of_range", "empty_file", "unreadable_media", "modality_mismatch"} <= set(reasons)
    assert all(text.strip() for text in reasons.values())
