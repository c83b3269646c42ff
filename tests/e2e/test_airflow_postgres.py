"""emotion_dataset_refresh on a production-shaped Airflow: PostgreSQL metadata DB, LocalExecutor, the real scheduler,
dag-processor and api-server (Execution API) as separate processes, runs triggered through the REST API.

Two refreshes triggered at once must queue behind each other (max_active_runs=1), the first publishing v1 and the
second finding the data unchanged, with one tag in the data repo. A new actor's clips landing under the corpus root
must make `footage_landed` update the `emopipe_footage` asset, which starts an asset-triggered refresh that publishes
the next version and re-extracts only the new clips (skipped while dags/footage_landed.py does not exist).
"""

from __future__ import annotations

import json
import pathlib
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from tests.conftest import TINY_DEMO, write_params
from tests.e2e import airflow_stack
from tests.e2e.airflow_stack import FINISHED, airflow_on_postgres, utc, wait_for

from emopipe import versioning
from emopipe.config import load_params

pytestmark = [pytest.mark.slow, pytest.mark.airflow, pytest.mark.ray, pytest.mark.postgres]

REFRESH = "emotion_dataset_refresh"
FOOTAGE = "footage_landed"
RUN_TIMEOUT = 1500  # s, for one refresh on a loaded 2-core machine (about 1-2 min when idle)


class Stack:
    def __init__(self, airflow: airflow_stack.Airflow, db: airflow_stack.Postgres, params_file: pathlib.Path):
        self.airflow, self.db, self.params_file = airflow, db, params_file
        self.params = load_params(params_file)

    def runs(self, dag_id: str) -> list[dict]:
        return self.db.query(
            "SELECT run_id, run_type, state, conf, start_date, end_date, logical_date FROM dag_run "
            "WHERE dag_id = %s ORDER BY start_date NULLS LAST, run_id",
            (dag_id,),
        )

    def wait_finished(self, dag_id: str, run_ids: set[str], timeout: float = RUN_TIMEOUT) -> list[dict]:
        """The dag_run rows of `run_ids` once all of them have finished, or as soon as one has failed."""

        def finished() -> list[dict] | None:
            self.airflow.check_alive()
            rows = [r for r in self.runs(dag_id) if r["run_id"] in run_ids]
            done = [r for r in rows if r["state"] in FINISHED]
            if len(done) == len(run_ids) or any(r["state"] == "failed" for r in done):
                return rows
            return None

        return wait_for(f"{dag_id} runs {sorted(run_ids)} to finish", finished, timeout, 3.0, self.airflow.diagnostics)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.db.query(
            "SELECT task_id, state, start_date, end_date, try_number FROM task_instance "
            "WHERE dag_id = %s AND run_id = %s ORDER BY start_date",
            (dag_id, run_id),
        )

    def report(self, run_id: str) -> dict:
        return json.loads((self.params.run_dir(run_id) / "report.json").read_text())

    def tags(self) -> list[str]:
        repo = self.params.publish.data_repo
        if not (repo / ".git").exists():
            return []
        return versioning.git(repo, "tag", "--list").split()

    def trigger(self, dag_id: str, confs: list[dict]) -> list[str]:
        """Trigger one run per conf through the REST API, all requests in flight together while the DAG is paused,
        then unpause it; the run ids.

        Unpausing a DAG with a cron schedule and catchup=False makes the scheduler start a run for the latest slot at
        once. The first trigger takes that slot's logical date, so the scheduler finds the slot's run already there
        and adds none: exactly the runs triggered here exist.
        """
        (dag_row,) = self.db.query("SELECT next_dagrun FROM dag WHERE dag_id = %s", (dag_id,))
        slot = dag_row["next_dagrun"].isoformat() if dag_row["next_dagrun"] else None
        bodies = [{"logical_date": slot if i == 0 else None, "conf": conf} for i, conf in enumerate(confs)]
        with ThreadPoolExecutor(len(bodies)) as pool:
            runs = list(pool.map(lambda body: self.airflow.request("POST", f"/dags/{dag_id}/dagRuns", body), bodies))
        self.airflow.request("PATCH", f"/dags/{dag_id}", {"is_paused": False})
        return [run["dag_run_id"] for run in runs]

    def latest_report(self) -> dict | None:
        pointer = self.params.work_dir / "runs" / "LATEST.json"
        if not pointer.is_file():
            return None
        return json.loads((pathlib.Path(json.loads(pointer.read_text())["run_dir"]) / "report.json").read_text())

    def why(self, dag_id: str, rows: list[dict]) -> str:
        """What a red CI needs: the runs and their task states, then the service and task logs."""
        lines = [f"{r['run_id']} {r['run_type']} {r['state']} {r['start_date']} -> {r['end_date']}" for r in rows]
        for r in rows:
            lines += [
                f"  {t['task_id']}: {t['state']} (try {t['try_number']})"
                for t in self.task_instances(dag_id, r["run_id"])
            ]
        return "\n".join(lines) + "\n" + self.airflow.diagnostics({r["run_id"] for r in rows})


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if airflow_stack.postgres_bin_dir() is None:
        pytest.skip("PostgreSQL server binaries (initdb, postgres) not found on PATH or in /usr/lib/postgresql/*/bin")
    try:
        airflow_stack.unprivileged_user()
    except RuntimeError as err:
        pytest.skip(str(err))
    pytest.importorskip("psycopg2", reason="the postgres extra is not installed (psycopg2-binary)")
    pytest.importorskip("asyncpg", reason="the postgres extra is not installed (asyncpg, Airflow's async driver)")
    root = tmp_path_factory.mktemp("airflow-postgres")
    params_file = write_params(root / "cfg")  # root: null -> the DAG generates the tiny demo corpus
    dag_ids = {REFRESH} | ({FOOTAGE} if (airflow_stack.REPO / "dags" / f"{FOOTAGE}.py").exists() else set())
    started = time.monotonic()
    # Runs that get no conf (scheduled, asset-triggered) read EMOPIPE_PARAMS in the task processes.
    with airflow_on_postgres(root / "airflow", {"EMOPIPE_PARAMS": str(params_file)}) as (airflow, db):
        airflow.wait_parsed(dag_ids, db)
        print(f"PostgreSQL + Airflow up and DAGs parsed in {time.monotonic() - started:.0f} s")
        yield Stack(airflow, db, params_file)


def test_two_refreshes_triggered_at_once_run_one_after_the_other(stack):
    af, db = stack.airflow, stack.db
    conf = {"params_file": str(stack.params_file)}
    run_ids = set(stack.trigger(REFRESH, [conf, conf]))
    assert len(run_ids) == 2

    started = time.monotonic()
    rows = stack.wait_finished(REFRESH, run_ids)
    print(f"two refresh runs finished {time.monotonic() - started:.0f} s after being triggered")
    why = stack.why(REFRESH, rows)
    assert [r["state"] for r in rows] == ["success", "success"], why
    assert {r["run_id"] for r in stack.runs(REFRESH)} == run_ids, why  # no third (scheduled) run slipped in

    first, second = rows  # ordered by start date, in the metadata DB
    assert utc(second["start_date"]) >= utc(first["end_date"]), why
    first_tis, second_tis = (stack.task_instances(REFRESH, r["run_id"]) for r in rows)
    assert max(utc(t["end_date"]) for t in first_tis) <= min(utc(t["start_date"]) for t in second_tis), why
    assert {t["state"] for t in first_tis + second_tis} == {"success"}, why

    # The first published v1; the second found the same data and made no new version.
    first_report, second_report = stack.report(first["run_id"]), stack.report(second["run_id"])
    assert first_report["outcome"] == "published", why
    assert first_report["publish"]["version"] == "v1"
    assert second_report["outcome"] == "unchanged", why
    assert second_report["extraction"]["n_reused"] == second_report["clips"] > 0
    assert stack.tags() == ["v1"]

    # The metadata lives in PostgreSQL: the runs, their conf and the report task's XCom are rows there, and no
    # SQLite file was made.
    assert all(r["conf"] == conf for r in rows)
    xcoms = db.query(
        "SELECT run_id, value FROM xcom WHERE dag_id = %s AND task_id = 'report' AND key = 'return_value'", (REFRESH,)
    )
    assert {x["run_id"]: x["value"] for x in xcoms} == {first["run_id"]: "published", second["run_id"]: "unchanged"}
    (server,) = db.query("SELECT inet_server_port() AS port")
    assert server["port"] == db.port
    assert not (af.home / "airflow.db").exists()


def land_footage(stack: Stack, scratch: pathlib.Path) -> int:
    """Copy a new actor's clips (the demo generator's third actor: every emotion, video and audio) under the corpus
    root, as an uploader would; the number of files landed."""
    from emopipe.config import DemoConfig
    from emopipe.demo import make_ravdess_demo

    generated = make_ravdess_demo(scratch, DemoConfig(**{**TINY_DEMO, "actors": 3, "faults": False}))
    target = stack.params.corpus_root() / "Actor_03"
    assert not target.exists()
    shutil.copytree(generated / "Actor_03", target)
    return sum(1 for p in target.iterdir() if p.is_file())


def test_landed_footage_triggers_a_refresh(stack, tmp_path):
    if not (airflow_stack.REPO / "dags" / f"{FOOTAGE}.py").exists():
        pytest.skip(f"dags/{FOOTAGE}.py does not exist: no asset-triggered refresh to check")
    af, db = stack.airflow, stack.db
    if stack.latest_report() is None:  # run on its own: publish the first version, as the test above does
        (baseline,) = stack.wait_finished(REFRESH, set(stack.trigger(REFRESH, [{}])))
        assert baseline["state"] == "success", stack.why(REFRESH, [baseline])
    before = {r["run_id"] for r in stack.runs(REFRESH)}
    tags_before, previous = stack.tags(), stack.latest_report()
    n_new = land_footage(stack, tmp_path / "new-footage")

    (landed_id,) = stack.trigger(FOOTAGE, [{}])  # no conf: the task reads EMOPIPE_PARAMS
    (landed,) = stack.wait_finished(FOOTAGE, {landed_id})
    af.request("PATCH", f"/dags/{FOOTAGE}", {"is_paused": True})  # no more scans (it runs every 15 minutes)
    assert landed["state"] == "success", stack.why(FOOTAGE, [landed])
    events = db.query(
        "SELECT e.id, a.name, e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id "
        "WHERE e.source_dag_id = %s AND e.source_run_id = %s",
        (FOOTAGE, landed_id),
    )
    assert [e["name"] for e in events] == ["emopipe_footage"]
    assert events[0]["extra"]["added"] == n_new, events

    def asset_run() -> dict | None:
        af.check_alive()
        new = [r for r in stack.runs(REFRESH) if r["run_id"] not in before]
        return new[0] if new else None

    run = wait_for("a refresh run after the asset event", asset_run, 180, 2.0, af.diagnostics)
    started = time.monotonic()
    (row,) = stack.wait_finished(REFRESH, {run["run_id"]})
    print(f"asset-triggered refresh finished {time.monotonic() - started:.0f} s after it was created")
    why = stack.why(REFRESH, [row])
    assert (row["run_type"], row["state"]) == ("asset_triggered", "success"), why
    consumed = db.query(
        "SELECT a.name, e.source_dag_id FROM dagrun_asset_event d JOIN dag_run r ON r.id = d.dag_run_id "
        "JOIN asset_event e ON e.id = d.event_id JOIN asset a ON a.id = e.asset_id WHERE r.run_id = %s",
        (row["run_id"],),
    )
    assert consumed and {(c["name"], c["source_dag_id"]) for c in consumed} == {("emopipe_footage", FOOTAGE)}

    # The new actor's clips make a new version; the clips already processed are carried over, not re-extracted.
    report = stack.report(row["run_id"])
    version = f"v{len(tags_before) + 1}"
    assert report["outcome"] == "published" and report["publish"]["version"] == version, why
    assert stack.tags() == [*tags_before, version]
    assert report["clips"] == previous["clips"] + n_new
    assert report["extraction"]["n_extracted"] == n_new
    assert report["extraction"]["n_reused"] == previous["clips"]
