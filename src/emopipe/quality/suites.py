"""Build Great Expectations suites from the declarative files in quality/ and the schemas in schemas/.

A suite file names its table, the columns that identify a row in failure messages, and a `blocking` and a
`warning` list of GX expectations (class name -> keyword arguments). `$name` arguments are thresholds from
params.yaml `validate:`; `from_schema: true` adds presence, not-null and type expectations derived from the
table's Arrow schema.
"""

from __future__ import annotations

import functools
import importlib.resources
import pathlib
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import yaml

from emopipe import schemas
from emopipe.config import Levels, ValidateConfig

LEVELS = ("blocking", "warning")


def quality_dir() -> pathlib.Path:
    """The repo's quality/ in a checkout, else the copy inside the wheel."""
    repo = pathlib.Path(__file__).resolve().parents[3] / "quality"
    if repo.is_dir():
        return repo
    return pathlib.Path(str(importlib.resources.files("emopipe") / "_data" / "quality"))


@dataclass(frozen=True)
class SuiteSpec:
    """One table's suites as declared in quality/<table>.yaml."""

    table: str
    id_columns: tuple[str, ...]
    levels: dict[str, dict[str, Any]]


@functools.cache
def load_spec(table: str) -> SuiteSpec:
    raw = yaml.safe_load((quality_dir() / f"{table}.yaml").read_text(encoding="utf-8"))
    if raw.get("table") != table:
        raise ValueError(f"quality/{table}.yaml declares table {raw.get('table')!r}")
    levels = {lv: raw.get(lv) or {} for lv in LEVELS}
    return SuiteSpec(table, tuple(raw.get("id_columns") or ()), levels)


def _threshold_values(cfg: ValidateConfig) -> dict[str, Any]:
    from emopipe.sources.demographics import vocabulary

    values: dict[str, Any] = {
        "taxonomy": list(schemas.taxonomy().canonical),
        "genders": list(vocabulary()["gender"]["values"]),
    }
    for name in type(cfg).model_fields:
        value = getattr(cfg, name)
        if isinstance(value, Levels):
            values[f"{name}.blocking"], values[f"{name}.warning"] = value.blocking, value.warning
        else:
            values[name] = value
    return values


def resolve(value: Any, values: dict[str, Any]) -> Any:
    """Replace a `$name` string by its threshold; anything else is returned unchanged."""
    if isinstance(value, str) and value.startswith("$"):
        try:
            return values[value[1:]]
        except KeyError as err:
            raise ValueError(f"quality: unknown threshold {value} (known: {sorted(values)})") from err
    return value


def python_type_name(typ: pa.DataType) -> str:
    """The type name GX observes for a pandas ArrowDtype column of this Arrow type."""
    if pa.types.is_integer(typ):
        return "int"
    if pa.types.is_floating(typ):
        return "float"
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return "str"
    if pa.types.is_boolean(typ):
        return "bool"
    if pa.types.is_list(typ) or pa.types.is_map(typ):
        return "list"
    if pa.types.is_struct(typ):
        return "dict"
    if pa.types.is_binary(typ):
        return "bytes"
    raise ValueError(f"no GX type name for {typ}")


def structural(schema: pa.Schema) -> list[Any]:
    """Presence, type and not-null rules derived from the Arrow schema, never hand-copied."""
    import great_expectations.expectations as gxe

    out: list[Any] = [gxe.ExpectTableColumnsToMatchSet(column_set=list(schema.names), exact_match=False)]
    for f in schema:
        out.append(gxe.ExpectColumnToExist(column=f.name))
        out.append(gxe.ExpectColumnValuesToBeOfType(column=f.name, type_=python_type_name(f.type)))
        if not f.nullable:
            out.append(gxe.ExpectColumnValuesToNotBeNull(column=f.name))
    return out


def build_suite(table: str, level: str, schema: pa.Schema, cfg: ValidateConfig, notes: list[str] | None = None) -> Any:
    """The GX ExpectationSuite `<table>.<level>`; `notes` (Markdown) are shown with the suite in Data Docs."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    spec = load_spec(table).levels[level]
    values = _threshold_values(cfg)
    expectations = structural(schema) if spec.get("from_schema") else []
    for item in spec.get("expectations") or []:
        ((name, kwargs),) = item.items()
        cls = getattr(gxe, name, None)
        if cls is None:
            raise ValueError(f"quality/{table}.yaml: {name} is not a Great Expectations expectation")
        expectations.append(cls(**{k: resolve(v, values) for k, v in (kwargs or {}).items()}))
    meta = {"notes": {"format": "markdown", "content": notes}} if notes else None
    return gx.ExpectationSuite(name=f"{table}.{level}", expectations=expectations, meta=meta)
