"""Arrow schemas and the emotion taxonomy, loaded once from the declarative files in schemas/.

Columns are declared in `schemas/<table>.yaml` and nowhere else; this module only turns those files
into `pyarrow.Schema` objects and offers `conform()`, which every write goes through.

A `map<K, V>` in a schema file is stored as `list<struct<key: K, value: V>>`: the same entries (Arrow's map is that
list underneath), but a type every reader has, where Arrow's map type has no Hugging Face `datasets` equivalent and
no pandas one. `from_rows` accepts a dict (or (key, value) pairs) for such a column; `as_dict` turns a stored value
back into a dict; a table written with a real map column (an older version) is cast on `conform`.
"""

from __future__ import annotations

import functools
import importlib.resources
import pathlib
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import yaml


class SchemaError(ValueError):
    """A table does not match its declared schema."""


_SCALARS: dict[str, pa.DataType] = {
    "string": pa.string(),
    "binary": pa.binary(),
    "bool": pa.bool_(),
    "int8": pa.int8(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}


def _split_top(text: str) -> list[str]:
    """Split on commas that are not nested inside <...>."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def parse_type(text: str) -> pa.DataType:
    """Parse a type written as in schemas/*.yaml: `string`, `list<T>`, `map<K, V>`, `struct<a: T, b: U>`."""
    text = text.strip()
    if text in _SCALARS:
        return _SCALARS[text]
    head, sep, rest = text.partition("<")
    if not sep or not rest.endswith(">"):
        raise SchemaError(f"unknown type {text!r}")
    inner = rest[:-1]
    if head == "list":
        return pa.list_(parse_type(inner))
    if head == "map":
        key, value = _split_top(inner)
        return map_type(parse_type(key), parse_type(value))
    if head == "struct":
        fields = []
        for part in _split_top(inner):
            name, _, typ = part.partition(":")
            fields.append(pa.field(name.strip(), parse_type(typ)))
        return pa.struct(fields)
    raise SchemaError(f"unknown type {text!r}")


def map_type(key: pa.DataType, value: pa.DataType) -> pa.DataType:
    """How a `map<K, V>` column is stored: a list of {key, value} structs (see the module docstring)."""
    return pa.list_(pa.struct([pa.field("key", key, nullable=False), pa.field("value", value)]))


def is_map(typ: pa.DataType) -> bool:
    """Whether a column type is a stored map (`map_type`) or an Arrow map."""
    if pa.types.is_map(typ):
        return True
    if not pa.types.is_list(typ) or not pa.types.is_struct(typ.value_type):
        return False
    return [f.name for f in typ.value_type] == ["key", "value"]


def map_entries(value: Any) -> list[dict[str, Any]] | None:
    """A map value as stored: a dict, (key, value) pairs or {key, value} dicts -> [{"key": k, "value": v}, ...]."""
    if value is None:
        return None
    if isinstance(value, dict):  # always a map, even one whose keys happen to be "key" and "value"
        return [{"key": k, "value": v} for k, v in value.items()]
    out = []
    for entry in value:
        if isinstance(entry, dict):
            out.append({"key": entry["key"], "value": entry.get("value")})
        else:
            k, v = entry
            out.append({"key": k, "value": v})
    return out


def as_dict(value: Any) -> dict[str, Any]:
    """A stored map value (list of {key, value}, Arrow map pairs, or a dict) as a dict; {} for null."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return dict(value)
    return {e["key"]: e["value"] for e in map_entries(value) or []}


def schema_dir() -> pathlib.Path:
    """Where the declarative schema files live: the repo's schemas/ in a checkout, else the copy inside the wheel."""
    repo = pathlib.Path(__file__).resolve().parents[2] / "schemas"
    if repo.is_dir():
        return repo
    return pathlib.Path(str(importlib.resources.files("emopipe") / "_data" / "schemas"))


@functools.cache
def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load((schema_dir() / f"{name}.yaml").read_text(encoding="utf-8"))


def load_schema(name: str) -> pa.Schema:
    """Build the Arrow schema of table `name`; field docs and the table version go into metadata."""
    spec = _load(name)
    fields = [
        pa.field(f["name"], parse_type(f["type"]), nullable=bool(f["nullable"]), metadata={"doc": f.get("doc", "")})
        for f in spec["fields"]
    ]
    return pa.schema(fields, metadata={"table": spec["name"], "version": str(spec["version"])})


def table_doc(name: str) -> str:
    """The `doc` of a table's schema file, on one line."""
    return " ".join(str(_load(name).get("doc", "")).split())


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Select, order and cast `table` to `schema`. Raise SchemaError instead of writing drifted data.

    A nullable column the table lacks is added as nulls: a table written before that column was declared (an
    older version of the schema) still reads. A missing non-nullable column is an error.
    """
    missing = [n for n in schema.names if n not in table.column_names and not schema.field(n).nullable]
    if missing:
        raise SchemaError(f"{schema.metadata.get(b'table', b'?').decode()}: missing columns {missing}")
    for name in (n for n in schema.names if n not in table.column_names):
        table = table.append_column(name, pa.nulls(table.num_rows, schema.field(name).type))
    try:
        out = table.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as err:  # wrong type, or nulls in a non-nullable field
        raise SchemaError(str(err)) from err
    if nulls := [f.name for f in schema if not f.nullable and out.column(f.name).null_count]:
        raise SchemaError(f"nulls in non-nullable columns {nulls}")
    return out


def from_rows(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Build a conformed table from plain dicts; absent keys become nulls; a map column takes dicts."""
    columns = {f.name: [r.get(f.name) for r in rows] for f in schema}
    for f in schema:
        if is_map(f.type) and not pa.types.is_map(f.type):
            columns[f.name] = [map_entries(v) for v in columns[f.name]]
    try:
        table = pa.table({f.name: pa.array(columns[f.name], type=f.type) for f in schema})
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise SchemaError(str(err)) from err
    return conform(table, schema)


@dataclass(frozen=True)
class Taxonomy:
    """The canonical emotion classes and each corpus's native -> canonical map."""

    canonical: tuple[str, ...]
    negative: frozenset[str]
    corpora: dict[str, dict[str, Any]]
    basic7: tuple[str, ...] = ()
    synonyms: dict[str, str] | None = None

    def native_to_canonical(self, corpus: str) -> dict[str, str]:
        return dict(self.corpora[corpus]["labels"])

    def classes(self, corpus: str) -> list[str]:
        """Canonical classes a corpus defines, in canonical order."""
        present = set(self.native_to_canonical(corpus).values())
        return [c for c in self.canonical if c in present]

    def license(self, corpus: str) -> str:
        return str(self.corpora[corpus]["license"])

    def to_basic7(self, label: str | None) -> str | None:
        """The basic-7 projection of a canonical label; None outside the seven (see taxonomy.yaml)."""
        return label if label in self.basic7 else None

    def from_word(self, word: str | None) -> str | None:
        """Canonical class for a free-text emotion word (case and surrounding space ignored); None if unknown."""
        if not word:
            return None
        return (self.synonyms or {}).get(word.strip().lower())


@functools.cache
def taxonomy() -> Taxonomy:
    spec = _load("taxonomy")
    canonical = tuple(spec["canonical"])
    for corpus, body in spec["corpora"].items():
        unknown = set(body["labels"].values()) - set(canonical)
        if unknown:
            raise SchemaError(f"taxonomy: {corpus} maps onto unknown classes {sorted(unknown)}")
    synonyms = {str(k).lower(): v for k, v in (spec.get("synonyms") or {}).items()}
    if unknown := set(synonyms.values()) - set(canonical):
        raise SchemaError(f"taxonomy: synonyms map onto unknown classes {sorted(unknown)}")
    if unknown := set(spec.get("basic7") or ()) - set(canonical):
        raise SchemaError(f"taxonomy: basic7 names unknown classes {sorted(unknown)}")
    return Taxonomy(canonical, frozenset(spec["negative"]), spec["corpora"], tuple(spec.get("basic7") or ()), synonyms)


def quarantine_reasons() -> dict[str, str]:
    """The fixed quarantine reason codes with their meaning."""
    return dict(_load("quarantine")["reasons"])


CLIPS = load_schema("clips")
QUARANTINE = load_schema("quarantine")
