"""Audit a published dataset version for bias: pull it by tag with DVC, compute class balance, representation,
label/group dependence and model parity for the attributes asked for, run their Great Expectations suites, and
write the HTML report, the datasheet and bias.json under `<work_dir>/audits/<tag>__<run_id>/`.

Publishes nothing. Trigger with `{"tag": "v3", "attributes": ["gender", "age_group"]}`. Fails (after writing
the report) when a blocking bias check fails, naming the group, the class and the numbers.
"""

import pendulum
from airflow.sdk import Param, dag, task


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"retries": 2, "retry_delay": pendulum.duration(seconds=20)},
    params={
        "tag": Param("v1", type="string", description="published version to audit"),
        "attributes": Param(["gender", "age_group"], type="array", description="demographic columns to audit"),
        "params_file": Param(None, type=["null", "string"], description="params.yaml to use"),
    },
    tags=["emopipe", "emotion", "audit"],
    doc_md=__doc__,
)
def bias_audit():
    @task
    def checkout(params=None, run_id=None) -> str:
        from emopipe import lineage
        from emopipe.pipelines import refresh

        out = refresh.checkout_version(params["params_file"], run_id, params["tag"])
        lineage.checked_out(params["tag"], out)
        return out

    @task(retries=0)  # a failed bias check is a fact about the data: retrying cannot change it
    def audit(dataset_dir: str, params=None, run_id=None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from emopipe import lineage
        from emopipe.pipelines import refresh

        lineage.stage(inputs=[dataset_dir])
        result = refresh.bias_audit(params["params_file"], run_id, params["tag"], dataset_dir, params["attributes"])
        lineage.audited(result)
        if not result["success"]:
            failures = "\n".join(result["blocking_failures"])
            raise AirflowFailException(f"bias audit of {params['tag']} failed; report {result['report']}\n{failures}")
        return result

    audit(checkout())


bias_audit()
