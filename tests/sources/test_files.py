"""The one safe way every reader walks a root and reads a file: what is never followed, opened or trusted."""

import io
import os
import zipfile

import pytest

from emopipe.sources import files
from emopipe.sources.base import InvalidInput, check_name, printable, quarantine_row


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Actor_01/a.mp4", "Actor_01/a.mp4"),
        (os.fsdecode(b"caf\xe9.mp4"), "caf\\xe9.mp4"),
        ("a\nb\tc\x1b[31m", "a\\x0ab\\x09c\\x1b[31m"),
        ("evil\u202e4pm.exe", "evil\\u202e4pm.exe"),
        ("lone \ud800", "lone \\ud800"),
        ("日本語 クリップ", "日本語 クリップ"),
    ],
)
def test_printable_escapes_what_a_terminal_would_act_on(text, shown):
    assert printable(text) == shown and printable(text).isprintable()


def test_printable_bounds_keep_the_file_name():
    long = "a" * 500 + "/the-file.mp4"
    short = printable(long, 100)
    assert len(short) == 100 and short.endswith("/the-file.mp4") and "…" in short


def test_check_name_refuses_what_cannot_be_an_id():
    check_name("2026-11-01/my clip (1).mp4")
    for bad in [os.fsdecode(b"\xff.mp4"), "a\n.mp4", "a\u200b.mp4"]:
        with pytest.raises(InvalidInput) as err:
            check_name(bad)
        assert err.value.reason == "bad_name"


def test_quarantine_rows_name_the_file_and_stay_short():
    row = quarantine_row("a/b\n.mp4", "footage", "ingest", InvalidInput("bad_name", "x" * 5000), "r")
    assert row["path"] == "a/b\\x0a.mp4" and row["detail"].startswith("a/b\\x0a.mp4: ")
    assert len(row["detail"]) <= 400 and row["detail"].isprintable()


def test_walk_never_follows_out_of_the_root_nor_opens_special_files(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.mp4").write_bytes(b"secret")
    (root / "a.mp4").write_bytes(b"a")
    os.symlink("../a.mp4", root / "sub" / "inside.mp4")
    os.symlink(outside / "secret.mp4", root / "out.mp4")
    os.symlink("..", root / "sub" / "up")  # a folder link inside the root: walked where it lies, never twice
    os.symlink(root, root / "sub" / "root-again")
    os.mkfifo(root / "pipe.mp4")
    os.symlink("pipe.mp4", root / "to-pipe.mp4")
    (root / ".hidden.mp4").write_bytes(b"h")  # hidden, named like media (macOS ._ files): a row, never read
    (root / "._a.mp4").write_bytes(b"h")
    (root / ".DS_Store").write_bytes(b"h")  # hidden metadata: skipped without a row
    tree = files.walk(root)
    assert [e.rel for e in tree.files] == ["a.mp4", "sub/inside.mp4"]
    assert tree.files[1].via_link and tree.files[1].ident == tree.files[0].ident
    assert {rel: err.reason for rel, err in tree.problems} == {
        "out.mp4": "unsafe_path",
        "pipe.mp4": "not_a_file",
        "to-pipe.mp4": "not_a_file",
        ".hidden.mp4": "hidden_file",
        "._a.mp4": "hidden_file",
    }
    assert [(d.rel, d.via_link) for d in tree.dirs] == [("sub", False), ("sub/root-again", True), ("sub/up", True)]


def test_reads_are_of_the_file_walked_and_bounded(tmp_path):
    (tmp_path / "a.csv").write_bytes(b"0123456789")
    tree = files.walk(tmp_path)
    entry = tree.get("a.csv")
    assert files.read(entry) == b"0123456789" and files.sha256(entry)[1] == 10
    with pytest.raises(InvalidInput) as err:
        files.read(entry, limit=5)
    assert err.value.reason == "unreadable_file"
    (tmp_path / "b.csv").write_bytes(b"other")
    os.replace(tmp_path / "b.csv", tmp_path / "a.csv")  # another inode under the walked name
    with pytest.raises(InvalidInput) as err:
        files.read(entry)
    assert err.value.reason == "file_changed"
    os.unlink(tmp_path / "a.csv")
    with pytest.raises(InvalidInput) as err:
        files.sha256(entry)
    assert (err.value.reason, err.value.detail) == ("file_changed", "vanished during the scan")


def test_spreadsheets_that_would_expand_too_far_are_refused():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * 1_000_000)
    files.check_zip(buf.getvalue())
    with pytest.raises(InvalidInput, match="expands to 1000000 bytes"):
        files.check_zip(buf.getvalue(), limit=100_000)
    with pytest.raises(InvalidInput) as err:
        files.check_zip(b"PK\x03\x04 broken")
    assert err.value.reason == "unreadable_annotation"
