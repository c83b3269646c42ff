"""The vocabularies demographic estimates are mapped onto (schemas/estimated_demographics.yaml), how values normalise.

An estimator's model classes reach a vocabulary through the configured label map (or, without one, through the
vocabulary's own words and synonyms); a corpus's annotated or derived value reaches it through the same synonyms, and
for age groups through the numeric ranges (`"27"` and `"25-29"` are `18-30`). A value that does not normalise is
outside the vocabulary: the instrument audit counts it and does not compare it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

import yaml

from emopipe import schemas

_RANGE = re.compile(r"^\s*(\d{1,3})\s*(?:-|–|to)\s*(\d{1,3})\s*$")


@dataclass(frozen=True)
class Vocabulary:
    """One attribute's values.

    Args:
        attribute: the attribute (gender, age_group, skin_tone).
        values: its values, in order.
        synonyms: other words (lower case) -> value.
        ranges: for age groups, value -> (lowest, highest) year, inclusive.
        doc: what the attribute means.
    """

    attribute: str
    values: tuple[str, ...]
    synonyms: dict[str, str] = field(default_factory=dict)
    ranges: dict[str, tuple[int, int]] = field(default_factory=dict)
    doc: str = ""

    def word(self, text: object) -> str | None:
        """A model class name or a word -> value, by the value itself or a synonym (case and spaces ignored)."""
        if text is None:
            return None
        key = str(text).strip().lower()
        for value in self.values:
            if key == value.lower():
                return value
        return self.synonyms.get(key)

    def normalise(self, value: object) -> str | None:
        """A corpus's own value -> a vocabulary value, or None when it falls outside the vocabulary."""
        if (found := self.word(value)) is not None or not self.ranges:
            return found
        text = str(value).strip()
        if text.isdigit():
            low = high = int(text)
        elif m := _RANGE.match(text):
            low, high = int(m.group(1)), int(m.group(2))
        else:
            return None
        inside = [v for v, (a, b) in self.ranges.items() if a <= low and high <= b]
        return inside[0] if len(inside) == 1 else None


@functools.cache
def vocabularies() -> dict[str, Vocabulary]:
    """attribute -> Vocabulary, from schemas/estimated_demographics.yaml (loaded once)."""
    raw = yaml.safe_load((schemas.schema_dir() / "estimated_demographics.yaml").read_text(encoding="utf-8"))
    out = {}
    for attribute, body in (raw.get("attributes") or {}).items():
        values = tuple(str(v) for v in body["values"])
        synonyms = {str(k).strip().lower(): str(v) for k, v in (body.get("synonyms") or {}).items()}
        if unknown := sorted(set(synonyms.values()) - set(values)):
            raise schemas.SchemaError(f"demographics: {attribute} synonyms map onto unknown values {unknown}")
        ranges = {str(k): (int(v[0]), int(v[1])) for k, v in (body.get("ranges") or {}).items()}
        if unknown := sorted(set(ranges) - set(values)):
            raise schemas.SchemaError(f"demographics: {attribute} ranges name unknown values {unknown}")
        out[str(attribute)] = Vocabulary(str(attribute), values, synonyms, ranges, str(body.get("doc") or ""))
    return out


def attributes() -> tuple[str, ...]:
    """The attributes an estimator may estimate."""
    return tuple(vocabularies())
