"""Determinism: the same corpus and parameters, processed twice from scratch in separate work folders, give the
same dataset content hash and the same feature and label values."""

import pytest
from tests.conftest import write_params

from emopipe.dataset import Dataset
from emopipe.pipelines import refresh
from emopipe.quality.validate import load_result

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _full_run(tmp, corpus, run_id):
    params_file = str(write_params(tmp, ingest={"root": str(corpus)}))
    probed = refresh.probe_clips(params_file, run_id, refresh.ingest(params_file, run_id))
    labelled = refresh.label_clips(params_file, run_id, refresh.extract_features(params_file, run_id, probed))
    validated = refresh.validate(params_file, run_id, labelled)
    return load_result(validated).dataset_digest, validated


def test_two_runs_from_scratch_give_the_same_dataset(tiny_corpus_template, tmp_path):
    first, a = _full_run(tmp_path / "a", tiny_corpus_template, "run-a")
    second, b = _full_run(tmp_path / "b", tiny_corpus_template, "run-b")
    assert first == second
    da, db = Dataset(a), Dataset(b)
    for name in ("clips", "features", "labels", "fused_labels", "agreement", "extraction"):
        assert da.rows(name) == db.rows(name) > 0, name
        # every value, crops and log-mels included: the same rows make the same content-addressed files
        assert [p.name for p in da.files(name)] == [p.name for p in db.files(name)], name
        assert [p.read_bytes() for p in da.files(name)] == [p.read_bytes() for p in db.files(name)], name
