"""Demographic values read from a corpus, checked against the vocabularies of schemas/demographics.yaml.

A value is normalised (NFKC, case-folded, spaces collapsed, dashes unified), then it is either a declared value,
a declared "unknown" (null, no problem) or outside the vocabulary (InvalidInput(invalid_annotation)): a sidecar's
`<script>` never becomes a group name in the clips table, a report or the bias audit.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from typing import Any

import yaml

from emopipe import schemas
from emopipe.sources.base import InvalidInput, printable

ATTRIBUTES = ("gender", "age_group", "accent")
_DASHES = re.compile(r"\s*[-‐‑‒–—―−﹣－]\s*")  # the dashes people type in ranges
_SPACE = re.compile(r"\s+")
_RANGE = re.compile(r"([0-9]{1,3})-([0-9]{1,3})", re.ASCII)
_OPEN = re.compile(r"([0-9]{1,3})\s*\+", re.ASCII)
_AGE = re.compile(r"[0-9]{1,3}", re.ASCII)


@functools.cache
def vocabulary() -> dict[str, Any]:
    """The parsed schemas/demographics.yaml."""
    spec = yaml.safe_load((schemas.schema_dir() / "demographics.yaml").read_text(encoding="utf-8"))
    return {name: spec[name] for name in ATTRIBUTES}


def _text(raw: Any) -> str:
    """The annotation value as normalised text; numbers are written as integers when they are whole."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise InvalidInput("invalid_annotation", f"{type(raw).__name__} is not a text value")
    if isinstance(raw, float):
        if not math.isfinite(raw) or not raw.is_integer():
            raise InvalidInput("invalid_annotation", "is not a whole number")
        raw = int(raw)
    text = unicodedata.normalize("NFKC", str(raw)).casefold()
    return _SPACE.sub(" ", text).strip()


def _age_group(text: str, spec: dict[str, Any]) -> str:
    top = int(spec["max_age"])
    candidate = _DASHES.sub("-", text)
    if m := _RANGE.fullmatch(candidate):
        low, high = int(m.group(1)), int(m.group(2))
        if low <= high <= top:
            return f"{low}-{high}"
    elif m := _OPEN.fullmatch(candidate):
        if int(m.group(1)) <= top:
            return f"{int(m.group(1))}+"
    elif _AGE.fullmatch(candidate) and int(candidate) <= top:
        age, bins = int(candidate), [int(b) for b in spec["bins"]]
        starts = [b for b in bins if b <= age]
        if starts:
            i = bins.index(starts[-1])
            return f"{bins[i]}-{bins[i + 1] - 1}" if i + 1 < len(bins) else f"{bins[i]}+"
    raise InvalidInput("invalid_annotation", "is not a declared group, an age range N-M or N+, or an age in years")


def normalise(attribute: str, raw: Any) -> str | None:
    """The vocabulary value of `raw` for `attribute` (gender, age_group, accent); None for a declared unknown.

    Raises:
        InvalidInput: `invalid_annotation` (detail names the attribute and the value, escaped) when `raw` is
            outside the vocabulary.
    """
    spec = vocabulary()[attribute]
    try:
        text = _text(raw)
        if text in {str(u).casefold() for u in spec.get("unknown", ())}:
            return None
        if attribute == "gender":
            synonyms = {str(k).casefold(): v for k, v in (spec.get("synonyms") or {}).items()}
            value = synonyms.get(text, text)
            if value in spec["values"]:
                return value
            raise InvalidInput("invalid_annotation", f"is not one of {spec['values']}")
        if attribute == "age_group":
            return text if text in spec["values"] else _age_group(text, spec)
        if re.fullmatch(spec["pattern"], text):
            return text
        raise InvalidInput("invalid_annotation", "is not free text of letters, spaces and - ' . ( ) (64 at most)")
    except InvalidInput as err:
        raise InvalidInput("invalid_annotation", f"{attribute}={printable(repr(raw), 80)} {err.detail}") from None
