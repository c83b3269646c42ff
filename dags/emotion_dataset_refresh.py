"""Refresh the emotion dataset: ingest -> probe_clips -> extract_features -> label_clips -> estimate_attributes (Ray
jobs; the last one does nothing unless attribute estimators are configured) -> validate (GX) -> publish (DVC) -> export
(the formats trainers read, when asked for).

Runs daily at 03:00 UTC, whenever new footage lands (the `emopipe_footage` asset, updated by `footage_landed`) and
on demand, one run at a time (max_active_runs=1: a second trigger waits for the first). Each run processes only
clips whose bytes or stage version changed and carries the rest over from earlier runs. Trigger with
`{"params_file": "/path/params.yaml"}` to use another configuration (default: EMOPIPE_PARAMS, else the repo's
params.yaml) and `{"forget_subjects": ["ravdess:actor_07"]}` to remove a person from this and every later version;
`{"export_formats": ["hf", "webdataset", "r1omni"]}` exports the published version for trainers (`export`).
A blocking quality failure fails `validate` without retries and nothing is published; `report` always writes
`<work_dir>/runs/<run_id>/report.md` and fails the run when no version came out of it. A new version updates
the `emopipe_dataset` asset.
Logic lives in the `emopipe` package; this file only schedules.
"""

import pendulum
from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task

FOOTAGE = Asset("emopipe_footage")  # updated by the footage_landed DAG when media under a corpus root changed
DATASET = Asset("emopipe_dataset")  # updated by publish when a new version is tagged


@dag(
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 3 * * *", timezone="UTC"), assets=[FOOTAGE]),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": pendulum.duration(seconds=20)},
    params={
        "params_file": Param(None, type=["null", "string"], description="params.yaml to use"),
        "forget_subjects": Param(
            [], type="array", items={"type": "string"}, description="subject ids ('<corpus>:<id>') to remove for good"
        ),
        "export_formats": Param(
            None,
            type=["null", "array"],
            items={"type": "string", "enum": ["hf", "webdataset", "r1omni"]},
            description="export the published version in these formats (default: params.yaml export.formats)",
        ),
    },
    tags=["emopipe", "emotion"],
    doc_md=__doc__,
)
def emotion_dataset_refresh():
    @task
    def ingest(params=None, run_id=None) -> str:
        from emopipe import lineage
        from emopipe.pipelines import refresh

        out = refresh.ingest(params["params_file"], run_id, params.get("forget_subjects") or [])
        lineage.ingested(out)
        return out

    @task
    def probe_clips(ingest_dir: str, params=None, run_id=None) -> str:
        from emopipe import lineage
        from emopipe.pipelines import refresh

        lineage.stage(inputs=[ingest_dir])
        out = refresh.probe_clips(params["params_file"], run_id, ingest_dir)
        lineage.stage(outputs=[out])
        return out

    @task
    def extract_features(probe_dir: str, params=None, run_id=None) -> str:
        from emopipe import lineage
        from emopipe.pipelines import refresh

        lineage.stage(inputs=[probe_dir])
        out = refresh.extract_features(params["params_file"], run_id, probe_dir)
        lineage.stage(outputs=[out])
        return out

    @task
    def label_clips(extract_dir: str, params=None, run_id=None) -> str:
        from emopipe import lineage
        from emopipe.pipelines import refresh

        lineage.stage(inputs=[extract_dir])
        out = refresh.label_clips(params["params_file"], run_id, extract_dir)
        lineage.stage(outputs=[out])
        return out

    @task
    def estimate_attributes(label_dir: str, params=None, run_id=None) -> str:
        from emopipe import lineage
        from emopipe.pipelines import refresh

        lineage.stage(inputs=[label_dir])
        out = refresh.estimate_attributes(params["params_file"], run_id, label_dir)
        lineage.stage(outputs=[out])
        return out

    @task
    def validate(probe_dir: str, params=None, run_id=None) -> str:
        from airflow.sdk.exceptions import AirflowFailException

        from emopipe import lineage
        from emopipe.pipelines import refresh

        lineage.stage(inputs=[probe_dir])
        try:
            out = refresh.validate(params["params_file"], run_id, probe_dir)
        except refresh.GateFailed as err:
            lineage.stage(outputs=[err.out])  # the failed gate's reports
            raise AirflowFailException(str(err)) from err  # bad data: fail now, retrying cannot help
        lineage.stage(outputs=[out])
        return out

    @task(outlets=[DATASET])
    def publish(validated_dir: str, params=None, run_id=None, outlet_events=None) -> str:
        from emopipe import io, lineage
        from emopipe.pipelines import refresh

        lineage.stage(inputs=[validated_dir])
        out = refresh.publish(params["params_file"], run_id, validated_dir)
        lineage.published(out)
        outcome = io.read_json(out)
        outlet_events[DATASET].extra = {"version": outcome["version"], "created": outcome["created"]}
        return out

    @task
    def export(publish_json: str, params=None, run_id=None) -> str:
        from emopipe import lineage
        from emopipe.pipelines import refresh

        out = refresh.export(params["params_file"], run_id, publish_json, params.get("export_formats"))
        lineage.exported(publish_json, out)
        return out

    @task(trigger_rule="all_done", retries=0)
    def report(params=None, run_id=None) -> str:
        from airflow.sdk.exceptions import AirflowFailException

        from emopipe import lineage
        from emopipe.pipelines import refresh

        rep = refresh.report(params["params_file"], run_id)
        lineage.run_report(rep)
        summary = refresh.render_report(rep)
        if rep["outcome"] not in {"published", "unchanged"}:
            raise AirflowFailException(f"run {run_id} did not publish ({rep['outcome']}):\n{summary}")
        return rep["outcome"]

    published = publish(validate(estimate_attributes(label_clips(extract_features(probe_clips(ingest()))))))
    export(published) >> report()


emotion_dataset_refresh()
