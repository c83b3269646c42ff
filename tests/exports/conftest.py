"""A real published version for the export tests: the tiny demo corpus (marked synthetic, as the generator marks it)
through the refresh's own stage functions (ingest, probe, extract, label, gate, publish), in-process, once."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
from dataclasses import dataclass

import pytest

from tests.conftest import _STATE, needs_decoder, write_params

# Hugging Face `datasets` caches what it loads: keep it in the session folder, and never look for a hub.
os.environ["HF_HOME"] = str(_STATE / "hf")
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"

SYNTHETIC = {"generator": "emopipe.demo", "description": "a tinted photograph panning, and a tone per emotion"}


@dataclass
class Published:
    """A version published by the pipeline."""

    params_file: pathlib.Path
    params: object
    repo: pathlib.Path
    tag: str
    corpus: pathlib.Path

    @property
    def dataset(self):
        from emopipe.dataset import Dataset

        return Dataset.open(self.repo / "dataset")


def publish_tiny(root: pathlib.Path, template: pathlib.Path, **sections) -> Published:
    from emopipe import io
    from emopipe.pipelines import refresh

    corpus = pathlib.Path(shutil.copytree(template, root / "ravdess"))
    (corpus / ".emopipe-synthetic.json").write_text(json.dumps(SYNTHETIC))
    params_file = write_params(root / "cfg", ingest={"root": str(corpus)}, ray={"executor": "in-process"}, **sections)
    run = "exports-v1"
    folder = refresh.ingest(str(params_file), run)
    for stage in (refresh.probe_clips, refresh.extract_features, refresh.label_clips, refresh.validate):
        folder = stage(str(params_file), run, folder)
    outcome = io.read_json(refresh.publish(str(params_file), run, folder))
    params = refresh.load(str(params_file))
    return Published(params_file, params, params.publish.data_repo, outcome["version"], corpus)


@pytest.fixture(scope="session")
def published(tiny_corpus_template, tmp_path_factory) -> Published:
    """v1 of the 2-actor demo corpus (32 clips: 16 video, 16 audio-only; actors 1 and 2)."""
    return publish_tiny(tmp_path_factory.mktemp("published"), tiny_corpus_template)


@pytest.fixture
def decodes_video() -> None:
    """Skip, saying why, where `datasets` cannot decode video: it decodes with torchcodec."""
    needs_decoder("torchcodec", "datasets' video decoding (torchcodec)")
