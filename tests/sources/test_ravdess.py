"""RAVDESS file names: every code combination, malformed names, and scans of a corpus with bad inputs."""

import itertools
import pathlib

import pytest

from emopipe import schemas
from emopipe.sources import ravdess
from emopipe.sources.base import InvalidInput

CODES = [
    ravdess.MODALITIES,
    ravdess.VOCAL_CHANNELS,
    ravdess.EMOTIONS,
    ravdess.INTENSITIES,
    ravdess.STATEMENTS,
    ravdess.REPETITIONS,
    {f"{a:02d}": a for a in range(1, 25)},
]


def _valid(mod, voc, emo, inten) -> bool:
    emotion = ravdess.EMOTIONS[emo]
    if emotion == "neutral" and inten == "02":
        return False
    return not (voc == "02" and emotion not in ravdess.SONG_EMOTIONS)


def test_every_code_combination_decodes_or_is_rejected_with_a_reason():
    n_ok = n_rejected = 0
    for combo in itertools.product(*(sorted(c) for c in CODES)):
        mod, voc, emo, inten, stmt, rep, actor = combo
        ext = ".wav" if mod == "03" else ".mp4"
        name = "-".join(combo) + ext
        if not _valid(mod, voc, emo, inten):
            with pytest.raises(InvalidInput) as err:
                ravdess.parse_name(name)
            assert err.value.reason == "invalid_combination"
            n_rejected += 1
            continue
        parsed = ravdess.parse_name(name)
        assert parsed.modality == ravdess.MODALITIES[mod]
        assert parsed.vocal_channel == ravdess.VOCAL_CHANNELS[voc]
        assert parsed.emotion == ravdess.EMOTIONS[emo]
        assert parsed.intensity == ravdess.INTENSITIES[inten]
        assert parsed.statement == ravdess.STATEMENTS[stmt]
        assert parsed.repetition == int(rep)
        assert parsed.actor == int(actor)
        assert parsed.gender == ("male" if int(actor) % 2 else "female")
        n_ok += 1
    assert n_ok + n_rejected == 3 * 2 * 8 * 2 * 2 * 2 * 24
    assert n_rejected > 0


def test_official_emotion_codes():
    """Codes as the RAVDESS README defines them: 07 disgust, 08 surprised."""
    assert [ravdess.EMOTIONS[f"{i:02d}"] for i in range(1, 9)] == [
        "neutral",
        "calm",
        "happy",
        "sad",
        "angry",
        "fearful",
        "disgust",
        "surprised",
    ]


def test_documented_example():
    """The dataset's own example: 03-01-06-01-02-01-12.wav is an audio-only, spoken, fearful, normal take."""
    name = ravdess.parse_name("03-01-06-01-02-01-12.wav")
    assert (name.modality, name.vocal_channel, name.emotion, name.intensity) == (
        "audio-only",
        "speech",
        "fearful",
        "normal",
    )
    assert (name.statement, name.repetition, name.actor, name.gender) == (
        "Dogs are sitting by the door",
        1,
        12,
        "female",
    )


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("01-01-03-02-01-01-01 (copy).mp4", "bad_name"),
        ("1-1-3-2-1-1-1.mp4", "bad_name"),
        ("01-01-03-02-01-01.mp4", "bad_name"),
        ("01-01-03-02-01-01-01-01.mp4", "bad_name"),
        ("readme.txt", "bad_name"),
        ("01_01_03_02_01_01_01.mp4", "bad_name"),
        ("04-01-03-02-01-01-01.mp4", "code_out_of_range"),
        ("01-03-03-02-01-01-01.mp4", "code_out_of_range"),
        ("01-01-00-02-01-01-01.mp4", "code_out_of_range"),
        ("01-01-09-02-01-01-01.mp4", "code_out_of_range"),
        ("01-01-03-03-01-01-01.mp4", "code_out_of_range"),
        ("01-01-03-02-03-01-01.mp4", "code_out_of_range"),
        ("01-01-03-02-01-03-01.mp4", "code_out_of_range"),
        ("01-01-03-02-01-01-00.mp4", "code_out_of_range"),
        ("01-01-03-02-01-01-25.mp4", "code_out_of_range"),
        ("01-01-01-02-01-01-01.mp4", "invalid_combination"),
        ("01-02-07-01-01-01-01.mp4", "invalid_combination"),
        ("01-01-03-02-01-01-01.avi", "unsupported_extension"),
        ("01-01-03-02-01-01-01", "unsupported_extension"),
        ("03-01-03-02-01-01-01.mp4", "modality_mismatch"),
        ("01-01-03-02-01-01-01.wav", "modality_mismatch"),
    ],
)
def test_malformed_names_get_a_reason(name, reason):
    with pytest.raises(InvalidInput) as err:
        ravdess.parse_name(name)
    assert err.value.reason == reason
    assert err.value.detail


def _touch(root: pathlib.Path, rel: str, data: bytes = b"media") -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_scan_keeps_good_files_and_quarantines_the_rest(tmp_path):
    good = [
        "Actor_01/01-01-03-02-01-01-01.mp4",
        "Actor_01/03-01-02-01-02-02-01.wav",
        "Actor_02/02-02-06-02-01-01-02.mp4",
    ]
    for i, rel in enumerate(good):
        _touch(tmp_path, rel, f"clip {i}".encode())
    bad = {
        "Actor_01/notes.txt": "bad_name",
        "Actor_01/01-01-09-01-01-01-01.mp4": "code_out_of_range",
        "Actor_02/01-01-03-02-01-01-01.mp4": "folder_mismatch",
        "Actor_03/01-01-03-02-01-01-03.mp4": "empty_file",
        "Actor_03/01-01-03-02-01-01-03.avi": "unsupported_extension",
        "extra/01-01-03-02-01-01-01.mp4": "duplicate_id",
    }
    for rel, reason in bad.items():
        _touch(tmp_path, rel, b"" if reason == "empty_file" else b"x")
    _touch(tmp_path, "Actor_01/.DS_Store")
    result = ravdess.scan(tmp_path, run_id="t1")
    assert result.clips.schema.equals(schemas.CLIPS, check_metadata=True)
    assert sorted(result.clips["media_path"].to_pylist()) == sorted(good)
    got = dict(zip(result.quarantine["path"].to_pylist(), result.quarantine["reason"].to_pylist(), strict=True))
    assert got == bad
    assert set(result.quarantine["run_id"].to_pylist()) == {"t1"}


def test_clip_row_content(tmp_path):
    _touch(tmp_path, "Actor_07/01-01-02-02-02-02-07.mp4", b"abc")
    row = ravdess.scan(tmp_path, run_id="t").clips.to_pylist()[0]
    assert row["clip_id"] == "ravdess:01-01-02-02-02-02-07"
    assert (row["native_label"], row["label"]) == ("calm", "calm")
    assert (row["gender"], row["gender_source"], row["subject_id"]) == ("male", "derived", "ravdess:actor_07")
    assert row["sha256"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert row["size_bytes"] == 3 and row["license"].startswith("CC BY-NC-SA 4.0")
    assert row["age_group"] is None and row["age_group_source"] is None


def test_scan_of_missing_root_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        ravdess.scan(tmp_path / "nope", run_id="t")


# --- issue 19: names, links and folders that used to crash or vanish ---------------------------------------


def test_a_name_that_is_not_utf8_is_a_quarantine_row_naming_the_file(tmp_path):
    _touch(tmp_path, "Actor_01/01-01-03-02-01-01-01.mp4", b"good")
    bad = tmp_path.joinpath("Actor_01").as_posix().encode() + b"/01-01-03-\xff-01-01-01.mp4"
    with open(bad, "wb") as fh:
        fh.write(b"x")
    result = ravdess.scan(tmp_path, run_id="t")
    assert result.clips["media_path"].to_pylist() == ["Actor_01/01-01-03-02-01-01-01.mp4"]
    [row] = result.quarantine.to_pylist()
    assert row["reason"] == "bad_name"
    assert row["path"] == "Actor_01/01-01-03-\\xff-01-01-01.mp4" and row["path"] in row["detail"]
    assert row["detail"].isprintable()


@pytest.mark.parametrize(
    "name",
    [
        "01-01-03-02-01-01-01\n.mp4",
        "٠١-01-03-02-01-01-01.mp4",
        "01-01-03-02-01-01-0１.mp4",
        "01-01-03-02-01-01-01 .mp4",
    ],
    ids=["newline", "arabic-digits", "fullwidth-digit", "space"],
)
def test_the_name_grammar_is_exact_ascii(name):
    with pytest.raises(InvalidInput) as err:
        ravdess.parse_name(name)
    assert err.value.reason == "bad_name"


def test_links_leaving_the_root_loops_and_folders_named_like_clips_get_rows(tmp_path):
    import os

    root, outside = tmp_path / "root", tmp_path / "outside"
    _touch(root, "Actor_01/01-01-03-02-01-01-01.mp4", b"good")
    _touch(outside, "01-01-04-02-01-01-01.mp4", b"secret")
    os.symlink(outside / "01-01-04-02-01-01-01.mp4", root / "Actor_01" / "01-01-04-02-01-01-01.mp4")
    os.symlink(outside, root / "Actor_02")
    os.symlink("01-01-05-02-01-01-01.mp4", root / "Actor_01" / "01-01-05-02-01-01-01.mp4")  # to itself
    (root / "Actor_01" / "01-01-06-02-01-01-01.mp4").mkdir()
    result = ravdess.scan(root, run_id="t")
    assert result.clips["media_path"].to_pylist() == ["Actor_01/01-01-03-02-01-01-01.mp4"]
    got = dict(zip(result.quarantine["path"].to_pylist(), result.quarantine["reason"].to_pylist(), strict=True))
    assert got == {
        "Actor_01/01-01-04-02-01-01-01.mp4": "unsafe_path",
        "Actor_02": "unsafe_path",
        "Actor_01/01-01-05-02-01-01-01.mp4": "broken_symlink",
        "Actor_01/01-01-06-02-01-01-01.mp4": "not_a_file",
    }
