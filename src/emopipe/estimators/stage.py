"""An attribute estimator as a stage: the features columns its model reads in, one `estimates` row per clip out.

Each configured estimator is its own stage with its own version (`<name>@<model checksum>-<mapping hash>`), so a new
model or a new label map re-estimates only with that estimator, and one with no new clips never loads its model.
Every clip is estimated, also those whose attribute the corpus records: those are what the instrument audit scores
the estimator on. Whether an estimate is used is decided later (emopipe.estimators.audit), never here.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import numpy as np
import pyarrow as pa

from emopipe import schemas
from emopipe.config import EstimatorSpec
from emopipe.estimators.vocabulary import Vocabulary, vocabularies
from emopipe.stages.base import Resources, Stage

log = logging.getLogger(__name__)

ESTIMATES = schemas.load_schema("estimates")
KEY_INPUTS = ("clip_id", "corpus", "sha256")
INPUTS = {"face": ("face_crops_jpeg",), "audio": ("audio_pcm16",)}  # features columns each kind reads
MISSING = {"face": "no_face", "audio": "no_audio"}  # abstain reason of a clip without that input


def estimator_version(spec: EstimatorSpec) -> str:
    """`<name>@<version>` as the estimator's rows are keyed: the model folder's checksum and a hash of what maps its
    classes (kind, attribute, label map); computed without loading the model. min_confidence is left out: it is
    applied where estimates are used, so changing it re-estimates nothing."""
    from emopipe.labelers.base import folder_version

    mapping = json.dumps([spec.kind, spec.attribute, sorted(spec.label_map.items())], separators=(",", ":"))
    return f"{spec.name}@{folder_version(spec.path)}-{hashlib.sha256(mapping.encode()).hexdigest()[:6]}"


def to_vocabulary(
    classes: list[str], probs: np.ndarray, vocab: Vocabulary, label_map: dict[str, str]
) -> dict[str, Any]:
    """One clip's model probabilities as an estimate: the vocabulary value with the most probability mass.

    Model classes reach the vocabulary through `label_map` (or, when it is empty, the vocabulary's words and
    synonyms); their probabilities are summed per value. When more mass sits on unmapped classes than on the best
    value, the estimator abstains (`unmapped_class`) instead of guessing.

    Args:
        classes: the model's class names, in output order.
        probs: the clip's probabilities over them.
        vocab: the attribute's vocabulary.
        label_map: the configured map from model classes to values.
    """
    mapped: dict[str, float] = {}
    unmapped = 0.0
    for name, p in zip(classes, probs.tolist(), strict=True):
        value = label_map.get(name) if label_map else vocab.word(name)
        if value is None:
            unmapped += float(p)
        else:
            mapped[value] = mapped.get(value, 0.0) + float(p)
    raw = json.dumps({c: round(float(p), 6) for c, p in zip(classes, probs.tolist(), strict=True)})
    ordered = {v: mapped[v] for v in vocab.values if v in mapped}
    best = max(ordered, key=lambda v: ordered[v], default=None)  # ties: the value first in the vocabulary
    if best is None or unmapped > ordered[best]:
        return {"probabilities": ordered, "raw_output": raw, "abstain_reason": "unmapped_class"}
    return {"value": best, "confidence": ordered[best], "probabilities": ordered, "raw_output": raw}


class EstimateStage(Stage):
    """One configured attribute estimator over features rows.

    Args:
        spec: the estimator (name, kind, model folder, attribute, label map, min_confidence).
        batch_size: clips per worker call.
        gpus: GPUs per worker (0 on CPU).
    """

    output_schema = ESTIMATES
    failure_code = "estimator_failed"

    def __init__(self, spec: EstimatorSpec, batch_size: int = 16, gpus: float = 0.0) -> None:
        self.spec = spec
        self.name = f"estimate:{spec.name}"
        self.input_columns = (*KEY_INPUTS, *INPUTS[spec.kind])
        self.batch_size = batch_size
        self.resources = Resources(cpus=1.0, gpus=gpus)
        self._version = estimator_version(spec)
        self._model: Any = None

    @property
    def version(self) -> str:
        return self._version

    def setup(self) -> None:
        import torch

        from emopipe.estimators.models import load

        torch.set_num_threads(1)
        # a Ray actor given no GPU sees none (CUDA_VISIBLE_DEVICES is empty), so this asks only where one was placed
        device = "cuda" if torch.cuda.is_available() else "cpu"
        self._model = load(self.spec.kind, self.spec.path, device)

    def process(self, batch: pa.Table) -> pa.Table:
        if self._model is None:
            self.setup()
        rows = batch.to_pylist()
        results = self._model.predict(rows)
        if len(results) != len(rows):
            raise RuntimeError(f"{self.name} returned {len(results)} results for {len(rows)} clips")
        vocab = vocabularies()[self.spec.attribute]
        out = []
        for row, (probs, n) in zip(rows, results, strict=True):
            if probs is None:
                found: dict[str, Any] = {"abstain_reason": MISSING[self.spec.kind]}
            else:
                found = to_vocabulary(self._model.classes, probs, vocab, self.spec.label_map)
            out.append({**self._keys(row), **found, "n_inputs": n})
        return schemas.from_rows(out, ESTIMATES)

    def _keys(self, row: dict[str, Any]) -> dict[str, Any]:
        return {
            **{k: row[k] for k in KEY_INPUTS},
            "estimator": self._version,
            "kind": self.spec.kind,
            "attribute": self.spec.attribute,
        }

    def error_rows(self, batch: pa.Table, code: str, detail: str) -> pa.Table:
        rows = [
            {**self._keys(r), "abstain_reason": "error", "error": code, "error_detail": detail}
            for r in batch.select(list(KEY_INPUTS)).to_pylist()
        ]
        return schemas.from_rows(rows, ESTIMATES)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_model": None}  # the model is loaded on the worker, never shipped
