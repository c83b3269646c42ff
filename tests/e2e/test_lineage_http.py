"""OpenLineage events over HTTP, as to Marquez: a DAG run's events reach a real HTTP server at Marquez's endpoint, and
a backend that cannot be reached costs one warning per event, never the task."""

import http.server
import json
import os
import pathlib
import socket
import subprocess
import sys
import threading

import pytest
from tests.conftest import write_params

pytestmark = [pytest.mark.airflow]

AIRFLOW = str(pathlib.Path(sys.executable).parent / "airflow")


class _Lineage(http.server.BaseHTTPRequestHandler):
    """Marquez's lineage endpoint as far as a producer sees it: POST /api/v1/lineage with one event, 201."""

    received: list[tuple[str, dict]] = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, json.loads(body)))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args):  # keep the test output to the test
        pass


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_events_reach_an_http_backend_and_an_unreachable_one_fails_nothing(airflow_db, tiny_corpus, tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Lineage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    transport = {
        "type": "composite",  # both backends get every event; one failing does not stop the other
        "transports": [
            {"type": "http", "url": f"http://127.0.0.1:{server.server_port}"},
            {"type": "http", "url": f"http://127.0.0.1:{_closed_port()}", "timeout": 2, "retry": {"total": 0}},
        ],
    }
    params_file = write_params(tmp_path / "cfg", ingest={"root": str(tiny_corpus)})
    try:
        proc = subprocess.run(
            [AIRFLOW, "dags", "test", "footage_landed", "--conf", json.dumps({"params_file": str(params_file)})],
            capture_output=True, text=True, timeout=600, check=False,
            env={**os.environ, "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport)},
        )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    out = proc.stdout + proc.stderr
    assert "state=success" in out, out[-3000:]
    events = [e for path, e in _Lineage.received if path == "/api/v1/lineage"]
    scan = [e for e in events if e["job"]["name"] == "footage_landed.scan"]
    assert [e["eventType"] for e in scan] == ["START", "COMPLETE"]
    assert [(d["namespace"], d["name"]) for d in scan[-1]["inputs"]] == [("file", str(tiny_corpus.resolve()))]
    failed = [line for line in out.splitlines() if "failed to emit" in line]
    assert len(failed) == len(events), failed  # the unreachable backend: one line per event
    assert "Traceback" not in out
