"""Watch the corpus roots for new footage: when files were added, changed or removed since the last refresh that
finished, update the `emopipe_footage` asset, which triggers `emotion_dataset_refresh`.

Runs every 15 minutes and costs one `stat` per file (no reads). When nothing changed the task is skipped and the
asset is not updated. An uploader can also trigger this DAG right after a drop. Trigger with
`{"params_file": "/path/params.yaml"}` for another configuration.
"""

import pendulum
from airflow.sdk import Asset, Param, dag, task

FOOTAGE = Asset("emopipe_footage")


@dag(
    schedule="*/15 * * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": pendulum.duration(seconds=20)},
    params={"params_file": Param(None, type=["null", "string"], description="params.yaml to use")},
    tags=["emopipe", "emotion"],
    doc_md=__doc__,
)
def footage_landed():
    @task(outlets=[FOOTAGE])
    def scan(params=None, outlet_events=None) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from emopipe import lineage
        from emopipe.pipelines import refresh

        change = refresh.new_media(params["params_file"])
        lineage.scanned(change)
        if not (change["added"] or change["changed"] or change["removed"]):
            raise AirflowSkipException("no new, changed or removed media since the last refresh")
        outlet_events[FOOTAGE].extra = change
        return change

    scan()


footage_landed()
