"""A real PostgreSQL server and a real Airflow deployment (api-server, scheduler with LocalExecutor, dag-processor)
as subprocesses in a temp folder, for end-to-end tests. Nothing here is mocked; every process is stopped on exit.

PostgreSQL refuses to run as root: when the tests run as root the server runs as an unprivileged user
(`postgres`, else `nobody`) on a data folder it owns.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import json
import os
import pathlib
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

REPO = pathlib.Path(__file__).resolve().parents[2]
AIRFLOW = str(pathlib.Path(sys.executable).parent / "airflow")
FINISHED = {"success", "failed"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(what: str, check: Callable[[], Any], timeout: float, every: float = 1.0, why: Callable[[], str] = str):
    """Poll `check` until it returns something truthy; raise TimeoutError naming `what` (and `why()`) otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        if result := check():
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}\n{why()}")
        time.sleep(every)


def tail(path: pathlib.Path, n_chars: int = 6000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as err:
        return f"<{path}: {err}>"
    return text[-n_chars:]


# Error-level lines of Airflow's console and JSON logs, tracebacks, and failed states.
PROBLEMS = re.compile(
    r'\[(error|critical)\s*\]|"level":"(error|critical)"|Traceback|\w+(Error|Exception): |state=failed'
)


def problems(path: pathlib.Path, n_lines: int = 30) -> str:
    """The last `n_lines` lines of a log that report an error, a traceback or a failed state."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join([line[:800] for line in lines if PROBLEMS.search(line)][-n_lines:])


# --------------------------------------------------------------------------------------------------- PostgreSQL


def postgres_bin_dir() -> pathlib.Path | None:
    """The folder holding initdb and postgres (PATH first, then Debian's /usr/lib/postgresql/<v>/bin)."""
    if (initdb := shutil.which("initdb")) and shutil.which("postgres"):
        return pathlib.Path(os.path.realpath(initdb)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return pathlib.Path(candidates[-1]).parent if candidates else None


def unprivileged_user() -> str | None:
    """Who runs the server: ourselves unless we are root, else `postgres` or `nobody`."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise RuntimeError("running as root and there is no `postgres` or `nobody` user to run PostgreSQL as")


class Postgres:
    """One throwaway PostgreSQL cluster: initdb on a temp folder, `postgres` on a free port, trust auth on 127.0.0.1.

    Durability is off (fsync, synchronous_commit, full_page_writes): the data is thrown away afterwards.
    """

    def __init__(self, bin_dir: pathlib.Path, user: str = "airflow", database: str = "airflow"):
        self.bin_dir, self.user, self.database = bin_dir, user, database
        self.port = free_port()
        self.os_user = unprivileged_user()
        # Not under pytest's tmp_path: that is private to root, and the server may run as another user.
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="emopipe-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def _as_server_user(self) -> dict:
        return {"user": self.os_user, "group": pwd.getpwnam(self.os_user).pw_gid} if self.os_user else {}

    def start(self) -> Postgres:
        if self.os_user:
            entry = pwd.getpwnam(self.os_user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        init = subprocess.run(
            [str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8",
             "--no-sync", "--locale=C"],
            check=False, capture_output=True, text=True, cwd=self.root, **self._as_server_user(),
        )  # fmt: skip
        if init.returncode:
            raise RuntimeError(f"initdb failed ({init.returncode}):\n{init.stdout[-3000:]}{init.stderr[-3000:]}")
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.root),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
        }
        args = [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]
        with open(self.log, "ab") as log:  # noqa: PTH123
            self.proc = subprocess.Popen(
                [str(self.bin_dir / "postgres"), "-D", str(self.data), *args],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.root, start_new_session=True,
                **self._as_server_user(),
            )  # fmt: skip
        wait_for("PostgreSQL to accept connections", self._accepts, 60, 0.3, lambda: tail(self.log))
        conn = self.connect("postgres")
        try:
            conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
            conn.cursor().execute(f'CREATE DATABASE "{self.database}"')
        finally:
            conn.close()
        return self

    def _accepts(self) -> bool:
        if self.proc and self.proc.poll() is not None:
            raise RuntimeError(f"postgres exited with {self.proc.returncode}:\n{tail(self.log)}")
        try:
            self.connect("postgres").close()
        except Exception:  # noqa: BLE001 - psycopg2.OperationalError until it is up
            return False
        return True

    def connect(self, database: str | None = None):
        import psycopg2

        return psycopg2.connect(
            host="127.0.0.1", port=self.port, user=self.user, dbname=database or self.database, connect_timeout=5
        )

    def query(self, sql: str, args: tuple = ()) -> list[dict]:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, args)
                names = [c.name for c in cur.description]
                return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        finally:
            conn.close()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # "fast" shutdown: roll back and disconnect the clients
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)


# ------------------------------------------------------------------------------------------------------ Airflow


class Airflow:
    """A fresh AIRFLOW_HOME on `db_url`, with the api-server (REST + Execution API), the scheduler (LocalExecutor)
    and the dag-processor running as subprocesses, each logging to `<home>/<name>.log`."""

    SERVICES = ("api-server", "scheduler", "dag-processor")

    def __init__(self, home: pathlib.Path, db_url: str, extra_env: dict[str, str] | None = None):
        self.home = home
        self.api_port = free_port()
        self.api = f"http://127.0.0.1:{self.api_port}"
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__BASE_URL": self.api,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            **(extra_env or {}),
        }
        self.procs: dict[str, subprocess.Popen] = {}
        self._token: str | None = None

    def log(self, name: str) -> pathlib.Path:
        return self.home / f"{name}.log"

    def migrate(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.log("db-migrate"), "wb") as out:  # noqa: PTH123
            proc = subprocess.run(
                [AIRFLOW, "db", "migrate"], env=self.env, stdout=out, stderr=subprocess.STDOUT, timeout=600,
                check=False,
            )  # fmt: skip
        if proc.returncode:
            raise RuntimeError(f"airflow db migrate failed ({proc.returncode}):\n{tail(self.log('db-migrate'))}")

    def start(self) -> Airflow:
        for name in self.SERVICES:
            with open(self.log(name), "ab") as out:  # noqa: PTH123
                self.procs[name] = subprocess.Popen(
                    [AIRFLOW, name], env=self.env, stdout=out, stderr=subprocess.STDOUT, cwd=self.home,
                    start_new_session=True,  # its own process group: stop() also ends the task processes it forked
                )  # fmt: skip
        wait_for("the api-server to answer", self._healthy, 180, 1.0, self.diagnostics)
        return self

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"airflow {name} exited with {proc.returncode}\n{self.diagnostics()}")

    def _healthy(self) -> bool:
        self.check_alive()
        try:
            with urllib.request.urlopen(f"{self.api}/api/v2/monitor/health", timeout=5) as resp:
                return resp.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Call the REST API (`path` under /api/v2) as the all-admins user; the decoded JSON answer."""
        if self._token is None:
            with urllib.request.urlopen(f"{self.api}/auth/token", timeout=30) as resp:
                self._token = json.load(resp)["access_token"]
        req = urllib.request.Request(
            f"{self.api}/api/v2{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as err:
            raise RuntimeError(f"{method} {path} -> {err.code}: {err.read().decode(errors='replace')}") from err

    def wait_parsed(self, dag_ids: set[str], db: Postgres, timeout: float = 300) -> None:
        """Until the dag-processor has serialized every DAG in `dag_ids` into the metadata DB."""

        def parsed() -> bool:
            self.check_alive()
            rows = db.query("SELECT dag_id FROM serialized_dag WHERE dag_id = ANY(%s)", (list(dag_ids),))
            return {r["dag_id"] for r in rows} == dag_ids

        wait_for(f"the dag-processor to parse {sorted(dag_ids)}", parsed, timeout, 1.0, self.diagnostics)

    def task_logs(self, run_ids: set[str] | None = None, n_logs: int = 6) -> str:
        """The newest task logs (of these runs, or of all), for failure messages: their error lines and tails."""
        paths = sorted((self.home / "logs").glob("dag_id=*/run_id=*/task_id=*/*.log"), key=lambda p: p.stat().st_mtime)
        if run_ids is not None:
            paths = [p for p in paths if p.parent.parent.parent.name.removeprefix("run_id=") in run_ids]
        return "\n".join(
            f"--- {p.relative_to(self.home)}\n{problems(p, 10)}\n... tail:\n{tail(p, 1500)}" for p in paths[-n_logs:]
        )

    def diagnostics(self, run_ids: set[str] | None = None) -> str:
        """What went wrong, for a failure message: per service log its error lines and its tail, then task logs."""
        parts = []
        for name in ("db-migrate", *self.SERVICES):
            if found := problems(self.log(name)):
                parts.append(f"--- {name}.log: lines about errors\n{found}")
            parts.append(f"--- {name}.log: tail\n{tail(self.log(name), 3000)}")
        return "\n".join([*parts, self.task_logs(run_ids)])

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        # Task processes that outlived their parent still carry its process group id.
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def airflow_on_postgres(home: pathlib.Path, extra_env: dict[str, str] | None = None) -> Iterator[tuple]:
    """(Airflow, Postgres): a migrated metadata DB in a fresh PostgreSQL and the three Airflow services running."""
    bin_dir = postgres_bin_dir()
    db = Postgres(bin_dir)
    airflow = None
    try:
        db.start()
        airflow = Airflow(home, db.url, extra_env)
        airflow.migrate()
        airflow.start()
        yield airflow, db
    finally:
        if airflow is not None:
            airflow.stop()
        db.stop()


def utc(value: dt.datetime | None) -> dt.datetime | None:
    return value.astimezone(dt.UTC) if value is not None else None
