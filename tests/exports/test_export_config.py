"""The settings this feature adds to params.yaml: ingest.splits and export, strict like every other section."""

from __future__ import annotations

import pathlib

import pytest

from emopipe.config import ParamsError, load_params

REPO = pathlib.Path(__file__).resolve().parents[2]


def _lines(tmp_path: pathlib.Path, text: str) -> list[str]:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ParamsError) as err:
        load_params(path)
    return err.value.problems


def test_the_repos_params_carry_the_defaults():
    params = load_params(REPO / "params.yaml")
    assert (params.ingest.splits.subject_folds, params.ingest.splits.seed) == (5, 0)
    assert params.export.formats == () and params.export.fold == 1 and params.export.drop_near_duplicates


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ingest: {splits: {subject_folds: 1}}", "ingest.splits.subject_folds: "),
        ("ingest: {splits: {subject_folds: '5'}}", "ingest.splits.subject_folds: "),
        ("export: {formats: [zip]}", "export.formats[0]: must be one of 'hf', 'webdataset' or 'r1omni'"),
        ("export: {media_roots: {imdb: /x}}", "export.media_roots: unknown corpora ['imdb']"),
        ("export: {fold: 0}", "export.fold: "),
        ("export: {shard_size: 10}", "export.shard_size: unknown key"),
    ],
)
def test_a_bad_setting_is_one_line_naming_its_key(tmp_path, text, expected):
    lines = _lines(tmp_path, text + "\n")
    assert len(lines) == 1 and expected in lines[0], lines


def test_media_roots_are_paths_relative_to_the_file(tmp_path):
    (tmp_path / "params.yaml").write_text("export: {media_roots: {dfew: mnt/DFEW}, formats: [hf, r1omni]}\n")
    params = load_params(tmp_path / "params.yaml")
    assert params.export.media_roots == {"dfew": (tmp_path / "mnt/DFEW").resolve()}
    assert params.export.formats == ("hf", "r1omni")
