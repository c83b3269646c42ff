"""The command line on a published version, as a person uses it: a closed pipe, a bad attribute, a busy checkout
folder are one line (or nothing) and never a traceback; what the version ships says what it is."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from emopipe import io
from emopipe.cli import build_parser
from tests.test_cli_errors import _one_line


def _cli(published, *args: str, **kwargs) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "emopipe.cli", "--params", str(published.params_file), "-q", *args]
    return subprocess.run(command, text=True, check=False, timeout=600, **kwargs)


def test_show_params_dump_into_a_closed_pipe_is_quiet(published):
    """`emopipe show v1 --params-dump | head`: the reader is gone before emopipe has written everything."""
    read, write = os.pipe()
    os.close(read)
    proc = _cli(published, "show", published.tag, "--params-dump", stdout=write, stderr=subprocess.PIPE)
    os.close(write)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr[-2000:]
    whole = _cli(published, "show", published.tag, "--params-dump", capture_output=True)
    assert whole.returncode == 0 and '"validate"' in whole.stdout  # the same command, read to the end


def test_auditing_an_attribute_that_is_no_column_is_one_line(published):
    proc = _cli(published, "audit", published.tag, "--attributes", "nonexistent_col", capture_output=True)
    _one_line(proc, "nonexistent_col")


def test_checkout_into_a_folder_that_holds_files_is_one_line(published, tmp_path):
    dest = tmp_path / "busy"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    _one_line(_cli(published, "checkout", published.tag, str(dest), capture_output=True), str(dest), "not an empty")
    assert [p.name for p in dest.iterdir()] == ["notes.txt"]  # nothing of the clone was left in it


def test_the_version_ships_its_offline_validation_page_and_says_it_is_generated(published):
    dataset = published.repo / "dataset"
    text = (dataset / "validation.html").read_text(encoding="utf-8")
    gate = io.read_json(dataset / "validation.json")
    evaluated = sum(suite["evaluated"] for suite in gate["suites"].values())
    assert evaluated and text.count("<tr") >= evaluated  # a row for every expectation the gate evaluated
    assert "<script src=" not in text and "<link " not in text  # nothing fetched: readable offline
    lineage = io.read_json(published.repo / "lineage.json")
    assert list(lineage["source"]["synthetic"]) == ["ravdess"] and lineage["source"]["synthetic"]["ravdess"]


def test_every_argument_of_every_command_says_what_it_is():
    def walk(parser: argparse.ArgumentParser, where: str):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(sub, f"{where} {name}")
            elif not isinstance(action, argparse._HelpAction):
                yield where, action

    missing = [f"{where}: {a.dest}" for where, a in walk(build_parser(), "emopipe") if not a.help]
    assert not missing, missing
