"""What a person sees when something is wrong on the command line: one line naming what and where, exit 2, never a
traceback, nothing half-written left behind; and the flags and pipes people use work."""

import contextlib
import os
import pathlib
import subprocess
import sys

import pytest

from tests.conftest import write_params

EMOPIPE = str(pathlib.Path(sys.executable).parent / "emopipe")


def _emopipe(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([EMOPIPE, *args], capture_output=True, text=True, timeout=600, check=False, **kwargs)


def _one_line(proc: subprocess.CompletedProcess, *words: str) -> str:
    err = proc.stderr.strip()
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-500:], err[-2000:])
    assert "Traceback" not in err and err.count("\n") == 0, err
    for word in words:
        assert word in err, (word, err)
    return err


@contextlib.contextmanager
def _tmpfs(where: pathlib.Path, options: str):
    """A small file system of our own (a full or read-only disk); skips where mounting is not allowed."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, check=False
    )
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip() or 'not root'})")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


def test_global_flags_work_after_the_subcommand_too(tmp_path):
    params = write_params(tmp_path / "cfg")
    before = _emopipe("-q", "--params", str(params), "versions")
    after = _emopipe("versions", "-q", "--params", str(params))
    assert before.returncode == after.returncode == 0 and before.stdout == after.stdout
    assert "no published versions" in after.stdout and "INFO" not in after.stderr


def test_missing_folders_and_files_where_folders_belong(tiny_corpus, tmp_path):
    params = str(write_params(tmp_path / "cfg"))
    _one_line(_emopipe("-q", "--params", params, "validate", "/nonexistent"), "/nonexistent", "no such dataset folder")
    _one_line(_emopipe("-q", "--params", params, "report", "/nonexistent"), "/nonexistent", "not a run folder")
    (tmp_path / "a-file").write_text("x")
    proc = _emopipe("-q", "--params", params, "ingest", "ravdess", str(tiny_corpus), "--out", str(tmp_path / "a-file"))
    _one_line(proc, "a-file", "is a file")
    assert (tmp_path / "a-file").read_text() == "x"


def test_a_full_disk_is_one_line_and_leaves_no_temporary_files(tiny_corpus, tmp_path):
    params = str(write_params(tmp_path / "cfg"))
    with _tmpfs(tmp_path / "full", "size=8k") as disk:
        proc = _emopipe("-q", "--params", params, "ingest", "ravdess", str(tiny_corpus), "--out", str(disk / "ds"))
        _one_line(proc, "No space left on device")
        assert not [p for p in disk.rglob("*") if ".tmp" in p.name], list(disk.rglob("*"))
        assert not (disk / "ds").exists()  # nothing half-written was left as if complete


def test_a_read_only_output_is_one_line(tiny_corpus, tmp_path):
    params = str(write_params(tmp_path / "cfg"))
    with _tmpfs(tmp_path / "ro", "size=1m,ro") as disk:
        proc = _emopipe("-q", "--params", params, "ingest", "ravdess", str(tiny_corpus), "--out", str(disk / "ds"))
        _one_line(proc, "Read-only file system", str(disk))


def test_two_ingests_into_one_folder_at_once(tiny_corpus, tmp_path):
    """While another emopipe process holds the folder, an ingest into it fails at once saying who holds it and
    leaves the folder alone; once the holder is gone, the same command writes it whole."""
    from emopipe.dataset import Dataset

    params = str(write_params(tmp_path / "cfg"))
    out = tmp_path / "ds"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from emopipe import dataset\n"
         "with dataset.claim(sys.argv[1]):\n    print('held', flush=True); time.sleep(600)", str(out)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        busy = _emopipe("-q", "--params", params, "ingest", "ravdess", str(tiny_corpus), "--out", str(out))
        _one_line(busy, "is being written by emopipe pid", str(holder.pid))
        assert not out.exists()
    finally:
        holder.kill()
        holder.wait()
    again = _emopipe("-q", "--params", params, "ingest", "ravdess", str(tiny_corpus), "--out", str(out))
    assert again.returncode == 0, again.stderr[-2000:]
    assert Dataset.open(out).clips.num_rows > 0


def test_a_closed_pipe_is_not_a_traceback(tmp_path):
    """`emopipe show v1 --params-dump | head`: the reader stops reading before emopipe stops writing."""
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line is written
    proc = subprocess.run(
        [EMOPIPE, "--help"], stdout=write, stderr=subprocess.PIPE, text=True, timeout=120, check=False
    )
    os.close(write)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


@pytest.mark.parametrize("corpus", ["ravdess", "dfew", "mafw"])
def test_a_folder_that_is_not_the_corpus_root_is_said_so(corpus, tmp_path):
    """Pointing a reader at the wrong folder (here an empty one) is not a silent "0 clips"."""
    params = str(write_params(tmp_path / "cfg"))
    wrong = tmp_path / "downloads"
    wrong.mkdir()
    proc = _emopipe("-q", "--params", params, "ingest", corpus, str(wrong), "--out", str(tmp_path / "o"))
    assert proc.returncode == 0 and proc.stdout.startswith("0 clips"), proc.stderr[-2000:]
    assert "is it the corpus root?" in proc.stderr and str(wrong) in proc.stderr, proc.stderr


def test_the_ingest_progress_bar_has_a_total_and_logs_print_above_it(tiny_corpus, tmp_path):
    import re

    params = str(write_params(tmp_path / "cfg"))
    out = str(tmp_path / "o")
    proc = _emopipe("--params", params, "ingest", "ravdess", str(tiny_corpus), "--out", out, "--no-probe")
    assert proc.returncode == 0, proc.stderr[-2000:]
    segments = [s for s in re.split(r"[\r\n]", proc.stderr) if s.strip()]
    bars = [s for s in segments if s.startswith("scan ravdess:")]
    assert bars and re.search(r"\b(\d+)/\1\b", bars[-1]), bars[-3:]  # the bar knows its total and reaches it
    logs = [s for s in segments if " INFO " in s or " WARNING " in s]
    assert logs and all(re.match(r"\d{4}-\d\d-\d\d ", s) for s in logs), logs  # no log line glued to the bar
