"""Arrow schemas and the emotion taxonomy, loaded once from the declarative files in schemas/.

Columns are declared in `schemas/<table>.yaml` and nowhere else; this module only turns those files
into `pyarrow.Schema` objects and offers `conform()`, which every write goes through.
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
        return pa.map_(parse_type(key), parse_type(value))
    if head == "struct":
        fields = []
        for part in _split_top(inner):
            name, _, typ = part.partition(":")
            fields.append(pa.field(name.strip(), parse_type(typ)))
        return pa.struct(fields)
    raise SchemaError(f"unknown type {text!r}")


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
    """Build a conformed table from plain dicts; absent keys become nulls."""
    columns = {f.name: [r.get(f.name) for r in rows] for f in schema}
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
