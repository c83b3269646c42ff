"""The deployment files in infra/ checked as their consumers would read them, offline.

Nothing here is deployed (no Kubernetes, Docker or Helm on the test machines): every file is validated against the
schema or the parser of the thing that reads it, all shipped in PyPI packages, nothing downloaded at test time:

* Kubernetes objects, and every pod template inside the KubeRay RayCluster / RayJob: the Kubernetes OpenAPI
  schemas of `kubernetes-validate` (strict: unknown fields are errors).
* The RayCluster's own fields: Ray's KubeRay autoscaler code (`ray.autoscaler._private.kuberay`), which turns the
  custom resource into node types and checks them against Ray's `ray-schema.json` — what the autoscaler on the head
  does with this file. No PyPI or npm package ships KubeRay's CRD openAPIV3Schema (see infra/README.md).
* The compose file: the Compose Specification schema vendored in `check-jsonschema`.
* The Airflow Helm values: their Kubernetes-typed parts (env, volumes, mounts, resources) against the Kubernetes
  schemas; the chart's own values.schema.json ships in no PyPI or npm package, so the chart-level keys are not
  schema-checked here (infra/README.md).
* The Dockerfile: `dockerfile-parse`. The params files: emopipe's own `load_params`.

Beside the schemas, the invariants a reviewer looks for: no credentials in any committed file, every image tag
pinned, the GPU group asks for `nvidia.com/gpu`, names that must agree across files do.
"""

from __future__ import annotations

import copy
import importlib.metadata
import importlib.resources
import json
import pathlib
import re
import shlex
import subprocess
import sys
import tomllib
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="dev extra: pip install -e '.[dev]'")
pytest.importorskip("check_jsonschema", reason="dev extra: pip install -e '.[dev]'")
dockerfile_parse = pytest.importorskip("dockerfile_parse", reason="dev extra: pip install -e '.[dev]'")

import jsonschema  # noqa: E402  (after the skips: these come with the packages above)
import referencing  # noqa: E402
from kubernetes_validate import utils as kv_utils  # noqa: E402

from emopipe.config import Params, load_params, parse_params  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
RAYCLUSTER = INFRA / "kuberay" / "raycluster.yaml"
RAYJOB = INFRA / "kuberay" / "rayjob-extract-features.yaml"
STORAGE = INFRA / "kuberay" / "storage.yaml"
HELM_VALUES = INFRA / "helm" / "airflow-values.yaml"
COMPOSE = INFRA / "compose" / "docker-compose.yml"
ENV_EXAMPLE = INFRA / "compose" / ".env.example"
DOCKERFILE = INFRA / "docker" / "Dockerfile"
PARAMS_CLUSTER = INFRA / "params" / "cluster.yaml"
PARAMS_COMPOSE = INFRA / "params" / "compose.yaml"
DVC_FRAGMENT = INFRA / "dvc" / "s3-remote.yaml"

# The oldest Kubernetes release the manifests are written for (infra/README.md); strict schemas of that release.
K8S_VERSION = "1.33"

# Keys whose value is a credential when it is a literal: only references (${VAR}, secretKeyRef) may stand there.
SECRET_NAME = re.compile(
    r"(^|_)(password|passwd|secret|token|secret_key|secret_access_key|access_key_id|fernet_key|jwt_secret"
    r"|api_secret_key|auth_token|session_token|private_key)$",
    re.IGNORECASE,
)
SECRET_TEXT = [
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "an AWS access key id"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    # user:password@ in a URL; <placeholders> and ${VAR} references are not credentials
    (re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s:/@${}<>]+:(?!<)[^\s@${}<>]+@"), "a URL with a literal password"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"), "a GitHub token"),
]


# ----------------------------------------------------------------------------------------------------- helpers
def load_yaml(path: pathlib.Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_all(path: pathlib.Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def k8s_type_validator(type_name: str) -> jsonschema.protocols.Validator:
    """A validator for one Kubernetes API type (e.g. `podtemplatespec`) from kubernetes-validate's strict schemas."""
    version = next(v for v in reversed(kv_utils.all_versions()) if kv_utils.major_minor(v) <= K8S_VERSION)
    folder = f"kubernetes-json-schema/v{version}-local-strict"
    schema = kv_utils.schema_contents(f"{folder}/{type_name}-v1.json", version)
    definitions = kv_utils.schema_contents(f"{folder}/_definitions.json", version)
    registry = referencing.Resource.from_contents(schema) @ (
        referencing.Resource.from_contents(definitions) @ referencing.Registry()
    )
    return jsonschema.Draft202012Validator(schema, registry=registry)


def schema_errors(validator: jsonschema.protocols.Validator, instance: Any, where: str) -> list[str]:
    return [
        f"{where}.{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))
    ]


def k8s_object_errors(doc: dict[str, Any]) -> list[str]:
    """A whole Kubernetes object (Namespace, PVC, ...) through kubernetes-validate's own entry point."""
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as err:
        return [f"{doc['kind']}/{doc['metadata']['name']}.{'.'.join(map(str, err.path))}: {err.message}"]
    return []


def image_tag(image: str) -> str | None:
    """The tag of an image reference (None when it has none); a digest counts as pinned."""
    if "@sha256:" in image:
        return image.split("@", 1)[1]
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def pinned(image: str) -> bool:
    tag = image_tag(image)
    return bool(tag) and tag != "latest" and "$" not in tag


def ray_pod_templates(cr: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """group name -> pod template of a RayCluster spec (head included)."""
    spec = cr["spec"]
    return {"head": spec["headGroupSpec"]["template"]} | {
        g["groupName"]: g["template"] for g in spec.get("workerGroupSpecs", [])
    }


def quantity(value: Any) -> float:
    """A Kubernetes quantity as a number (enough for GPU counts and CPUs)."""
    text = str(value)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def is_gpu_group(group: dict[str, Any]) -> bool:
    return group["groupName"].startswith("gpu")


def raycluster_problems(cr: dict[str, Any]) -> list[str]:
    """Everything wrong with a RayCluster: Kubernetes schema of its pods, Ray's reading of it, our invariants."""
    from ray.autoscaler._private.kuberay.autoscaling_config import _derive_autoscaling_config_from_ray_cr

    problems: list[str] = []
    if (cr.get("apiVersion"), cr.get("kind")) != ("ray.io/v1", "RayCluster"):
        problems.append(f"not a ray.io/v1 RayCluster: {cr.get('apiVersion')} {cr.get('kind')}")
    pod = k8s_type_validator("podtemplatespec")
    for group, template in ray_pod_templates(cr).items():
        problems += schema_errors(pod, template, f"{group}.template")
    try:
        node_types = _derive_autoscaling_config_from_ray_cr(copy.deepcopy(cr))["available_node_types"]
    except (KeyError, TypeError, ValueError, jsonschema.ValidationError) as err:
        return [*problems, f"Ray's KubeRay reader rejects it: {type(err).__name__}: {err}"]
    import ray

    if cr["spec"].get("rayVersion") != ray.__version__:
        problems.append(f"rayVersion {cr['spec'].get('rayVersion')} is not the project's Ray {ray.__version__}")
    auth = cr["spec"].get("authOptions") or {}
    if auth.get("mode") != "token" or not auth.get("secretName"):
        problems.append("authOptions must be mode: token with a secretName the Airflow pods share")
    for group in cr["spec"].get("workerGroupSpecs", []):
        name = group["groupName"]
        container = group["template"]["spec"]["containers"][0]
        resources = container.get("resources", {})
        gpus = {part: resources.get(part, {}).get("nvidia.com/gpu") for part in ("requests", "limits")}
        if is_gpu_group(group):
            if not all(gpus.values()) or quantity(gpus["requests"]) != quantity(gpus["limits"]):
                problems.append(f"GPU group {name}: nvidia.com/gpu must be set, and equal, in requests and limits")
            elif node_types[name]["resources"].get("GPU") != quantity(gpus["limits"]):
                problems.append(f"GPU group {name}: Ray sees {node_types[name]['resources']} ")
            tolerated = {t.get("key") for t in group["template"]["spec"].get("tolerations", [])}
            if "nvidia.com/gpu" not in tolerated:
                problems.append(f"GPU group {name}: no toleration for the nvidia.com/gpu taint")
            if not image_tag(container["image"]).endswith("-gpu"):
                problems.append(f"GPU group {name}: image {container['image']} is not the gpu variant")
        else:
            if any(gpus.values()) or node_types[name]["resources"].get("GPU"):
                problems.append(f"CPU group {name} asks for GPUs")
            if not image_tag(container["image"]).endswith("-cpu"):
                problems.append(f"CPU group {name}: image {container['image']} is not the cpu variant")
    if not any(is_gpu_group(g) for g in cr["spec"].get("workerGroupSpecs", [])):
        problems.append("no GPU worker group")
    for group, template in ray_pod_templates(cr).items():
        for c in template["spec"]["containers"]:
            if not pinned(c["image"]):
                problems.append(f"{group}: image {c['image']} has no pinned tag")
    return problems


def secret_literals(node: Any, where: str = "") -> list[str]:
    """Credentials written as literals in a parsed YAML tree: secret-named keys and env entries with a value."""
    found: list[str] = []
    if isinstance(node, dict):
        name = node.get("name")
        if isinstance(name, str) and SECRET_NAME.search(name) and literal(node.get("value")):
            found.append(f"{where}: env {name} has a literal value")
        for key, value in node.items():
            if isinstance(key, str) and SECRET_NAME.search(key) and literal(value):
                found.append(f"{where}.{key}: literal credential")
            found += secret_literals(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found += secret_literals(item, f"{where}[{i}]")
    return found


def literal(value: Any) -> bool:
    """A non-empty value that is not a reference to a variable (${VAR}, $$VAR, $(VAR))."""
    return isinstance(value, str | int | float) and str(value).strip() != "" and not str(value).startswith("$")


def text_secrets(text: str) -> list[str]:
    return [what for pattern, what in SECRET_TEXT if pattern.search(text)]


def launcher_flags(script: pathlib.Path) -> tuple[set[str], set[str]]:
    """(required, all) long options of a ray_jobs launcher, from its own argparse usage line."""
    usage = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout.split("\n\n", 1)[0]
    everything = set(re.findall(r"--[a-z][a-z0-9-]*", usage))
    required = set(re.findall(r"--[a-z][a-z0-9-]*", re.sub(r"\[[^\]]*\]", "", usage)))
    return required, everything


def compose_schema() -> dict[str, Any]:
    """The Compose Specification schema vendored in check-jsonschema (licence: infra/README.md)."""
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads((vendor / "compose-spec.json").read_text(encoding="utf-8"))


def compose_errors(doc: dict[str, Any]) -> list[str]:
    schema = compose_schema()
    return schema_errors(jsonschema.validators.validator_for(schema)(schema), doc, "compose")


def params_dict(path: pathlib.Path) -> dict[str, Any]:
    return load_params(path).to_dict()


# ------------------------------------------------------------------------------------------ Kubernetes / KubeRay
def test_storage_objects_validate_against_kubernetes_schema():
    docs = load_all(STORAGE)
    assert {d["kind"] for d in docs} == {"Namespace", "PersistentVolumeClaim"}
    assert [e for d in docs for e in k8s_object_errors(d)] == []
    pvc = next(d for d in docs if d["kind"] == "PersistentVolumeClaim")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"], "every node mounts the same volume"


def test_raycluster_is_valid_and_read_by_ray_as_intended():
    cr = load_yaml(RAYCLUSTER)
    assert raycluster_problems(cr) == []

    from ray.autoscaler._private.kuberay.autoscaling_config import _derive_autoscaling_config_from_ray_cr

    nodes = _derive_autoscaling_config_from_ray_cr(copy.deepcopy(cr))["available_node_types"]
    assert nodes["headgroup"]["resources"]["CPU"] == 0, "the head runs no actors"
    assert nodes["gpu"]["resources"]["GPU"] == 1
    assert nodes["cpu"]["resources"]["CPU"] >= 8 and "GPU" not in nodes["cpu"]["resources"]
    assert nodes["cpu"]["max_workers"] > nodes["cpu"]["min_workers"], "the autoscaler may grow the CPU group"


def test_raycluster_pods_mount_the_shared_volume_and_params():
    cr = load_yaml(RAYCLUSTER)
    pvc = next(d for d in load_all(STORAGE) if d["kind"] == "PersistentVolumeClaim")
    for group, template in ray_pod_templates(cr).items():
        volumes = {v["name"]: v for v in template["spec"]["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in template["spec"]["containers"][0]["volumeMounts"]}
        assert volumes[mounts["/data"]]["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"], group
        assert volumes[mounts["/etc/emopipe"]]["configMap"]["name"] == "emopipe-params", group
        assert "/dev/shm" in mounts, f"{group}: the object store needs a memory-backed /dev/shm"


def test_gpu_group_without_nvidia_gpu_is_refused():
    cr = load_yaml(RAYCLUSTER)
    gpu = next(g for g in cr["spec"]["workerGroupSpecs"] if is_gpu_group(g))
    for part in ("requests", "limits"):
        del gpu["template"]["spec"]["containers"][0]["resources"][part]["nvidia.com/gpu"]
    problems = raycluster_problems(cr)
    assert any("nvidia.com/gpu must be set" in p for p in problems), problems


def test_gpu_group_without_toleration_or_on_the_cpu_image_is_refused():
    cr = load_yaml(RAYCLUSTER)
    gpu = next(g for g in cr["spec"]["workerGroupSpecs"] if is_gpu_group(g))
    del gpu["template"]["spec"]["tolerations"]
    gpu["template"]["spec"]["containers"][0]["image"] = "registry.example.com/emopipe/emopipe-worker:0.1.0-cpu"
    problems = raycluster_problems(cr)
    assert any("toleration" in p for p in problems), problems
    assert any("not the gpu variant" in p for p in problems), problems


def test_misspelled_pod_field_is_refused_by_the_kubernetes_schema():
    cr = load_yaml(RAYCLUSTER)
    container = cr["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
    container["resource"] = container.pop("resources")  # a typo Kubernetes would reject on apply
    problems = raycluster_problems(cr)
    assert any("'resource' was unexpected" in p for p in problems), problems


def test_misspelled_raycluster_field_is_refused_by_rays_reader():
    cr = load_yaml(RAYCLUSTER)
    cr["spec"]["workerGroupSpecs"][0]["maxReplica"] = cr["spec"]["workerGroupSpecs"][0].pop("maxReplicas")
    problems = raycluster_problems(cr)
    assert any("Ray's KubeRay reader rejects it" in p and "maxReplicas" in p for p in problems), problems


def test_unpinned_image_is_refused():
    cr = load_yaml(RAYCLUSTER)
    cr["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["image"] = "rayproject/ray:latest"
    assert any("no pinned tag" in p for p in raycluster_problems(cr))


def test_rayjob_runs_a_real_launcher_with_valid_arguments_on_the_cluster():
    job = load_yaml(RAYJOB)
    cr = load_yaml(RAYCLUSTER)
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    assert job["spec"]["clusterSelector"] == {"ray.io/cluster": cr["metadata"]["name"]}
    assert job["metadata"]["namespace"] == cr["metadata"]["namespace"]
    template = job["spec"]["submitterPodTemplate"]
    assert schema_errors(k8s_type_validator("podtemplatespec"), template, "submitterPodTemplate") == []
    assert all(pinned(c["image"]) for c in template["spec"]["containers"])

    argv = shlex.split(job["spec"]["entrypoint"])
    assert argv[0] == "python"
    script = pathlib.PurePosixPath(argv[1])
    assert str(script.parent) == dockerfile_env("worker")["EMOPIPE_RAY_JOBS_DIR"], "where the image puts ray_jobs/"
    launcher = REPO / "ray_jobs" / script.name
    assert launcher.is_file(), f"{script.name} is not one of ray_jobs/"
    required, known = launcher_flags(launcher)
    given = [a for a in argv[2:] if a.startswith("--")]
    assert required <= set(given), f"missing {required - set(given)}"
    assert set(given) <= known, f"unknown {set(given) - known}"
    values = dict(zip(argv[2::2], argv[3::2], strict=True))
    pod_env = {e["name"]: e["value"] for e in ray_pod_templates(cr)["head"]["spec"]["containers"][0]["env"]}
    assert values["--params"] == pod_env["EMOPIPE_PARAMS"], "the ConfigMap's params.yaml as the head sees it"
    assert all(values[k].startswith("/data/") for k in ("--input", "--output")), "run folders on the shared volume"


# ----------------------------------------------------------------------------------------------- Airflow (Helm)
def test_airflow_helm_values_kubernetes_parts_validate():
    values = load_yaml(HELM_VALUES)
    problems = []
    env_var, volume, mount, resources = (
        k8s_type_validator(t) for t in ("envvar", "volume", "volumemount", "resourcerequirements")
    )
    for i, item in enumerate(values["env"]):
        problems += schema_errors(env_var, item, f"env[{i}]")
    for i, item in enumerate(values["volumes"]):
        problems += schema_errors(volume, item, f"volumes[{i}]")
    for i, item in enumerate(values["volumeMounts"]):
        problems += schema_errors(mount, item, f"volumeMounts[{i}]")
    for component in ("workers", "scheduler", "apiServer", "dagProcessor"):
        problems += schema_errors(resources, values[component]["resources"], f"{component}.resources")
    assert problems == []


def test_airflow_helm_values_take_every_credential_from_a_secret():
    values = load_yaml(HELM_VALUES)
    for inline in ("fernetKey", "apiSecretKey", "jwtSecret", "webserverSecretKey"):
        assert inline not in values, f"{inline} would put a credential in the values file"
    assert "metadataConnection" not in values["data"]
    for by_name in ("fernetKeySecretName", "apiSecretKeySecretName", "jwtSecretName"):
        assert values[by_name]
    assert values["data"]["metadataSecretName"]
    assert all({"envName", "secretName", "secretKey"} == set(s) for s in values["secret"])
    assert secret_literals(values, "values") == []


def test_airflow_helm_values_agree_with_the_cluster_and_the_repo():
    values = load_yaml(HELM_VALUES)
    cr = load_yaml(RAYCLUSTER)
    params = load_params(PARAMS_CLUSTER)
    assert values["executor"] in {"KubernetesExecutor", "CeleryExecutor"}
    assert values["airflowVersion"] == importlib.metadata.version("apache-airflow")
    image = values["images"]["airflow"]
    assert pinned(f"{image['repository']}:{image['tag']}")
    assert values["defaultAirflowTag"] == image["tag"]
    git_sync = values["dags"]["gitSync"]
    assert git_sync["enabled"] and git_sync["repo"] and (REPO / git_sync["subPath"]).is_dir()
    assert any((REPO / git_sync["subPath"]).glob("*.py")), "git-sync would find no DAG file there"

    env = {e["name"]: e.get("value") for e in values["env"]}
    secret_env = {s["envName"]: s for s in values["secret"]}
    mounts = {m["name"]: m["mountPath"] for m in values["volumeMounts"]}
    volumes = {v["name"]: v for v in values["volumes"]}
    params_dir = next(p for n, p in mounts.items() if "configMap" in volumes[n])
    assert pathlib.PurePosixPath(env["EMOPIPE_PARAMS"]).parent == pathlib.PurePosixPath(params_dir)
    assert pathlib.PurePosixPath(env["EMOPIPE_PARAMS"]).name == "params.yaml", "the ConfigMap key of cluster.yaml"
    data = next(n for n, v in volumes.items() if "persistentVolumeClaim" in v)
    assert mounts[data] == "/data" and str(params.work_dir).startswith("/data/")
    head = ray_pod_templates(cr)["head"]["spec"]["containers"][0]
    assert env["EMOPIPE_PARAMS"] in [e["value"] for e in head["env"]], "a job's --params path must exist on the head"
    ray_token = secret_env["RAY_AUTH_TOKEN"]
    assert ray_token["secretName"] == cr["spec"]["authOptions"]["secretName"]
    assert env["RAY_AUTH_MODE"] == "token"
    assert f"AIRFLOW_CONN_{params.publish.aws_conn_id.upper()}" in secret_env, "the S3 connection publish reads"


# ----------------------------------------------------------------------------------------------------- compose
def test_compose_file_validates_against_the_compose_spec():
    assert compose_errors(load_yaml(COMPOSE)) == []


def test_misspelled_compose_key_is_refused():
    doc = load_yaml(COMPOSE)
    doc["services"]["ray-worker"]["comand"] = doc["services"]["ray-worker"].pop("command")
    assert any("'comand'" in e for e in compose_errors(doc))


def test_compose_has_the_trial_services_with_pinned_images_on_localhost():
    services = load_yaml(COMPOSE)["services"]
    wanted = {"postgres", "minio", "ray-head", "ray-worker", "airflow-apiserver", "airflow-scheduler"}
    assert wanted | {"airflow-dag-processor"} <= set(services)
    for name, service in services.items():
        assert pinned(service["image"]), f"{name}: {service['image']}"
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond this host"
    scheduler = services["airflow-scheduler"]
    assert scheduler["environment"]["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert scheduler["environment"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql")
    mounts = {v.split(":")[1]: v.split(":")[0] for v in scheduler["volumes"] if v.startswith((".", "/"))}
    assert (COMPOSE.parent / mounts["/etc/emopipe/params.yaml"]).resolve() == PARAMS_COMPOSE
    assert (COMPOSE.parent / mounts[scheduler["environment"]["AIRFLOW__CORE__DAGS_FOLDER"]]).resolve() == REPO / "dags"


def test_compose_reads_every_credential_from_the_uncommitted_env_file():
    doc = load_yaml(COMPOSE)
    assert secret_literals(doc, "compose") == []
    referenced = set()
    for name, service in doc["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key) or key.endswith(("PASSWORD", "ROOT_USER", "SQL_ALCHEMY_CONN")):
                refs = re.findall(r"\$\{([A-Z0-9_]+):\?[^}]+\}", str(value))
                assert refs, f"{name}: {key} must be ${{VAR:?message}} from .env, got {value!r}"
                referenced |= set(refs)
    example = dict(
        line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines() if line and not line.startswith("#")
    )
    assert referenced <= set(example), f"not in .env.example: {referenced - set(example)}"
    assert {k: v for k, v in example.items() if k in referenced and v} == {}, ".env.example holds no credentials"
    ignored = subprocess.run(["git", "check-ignore", "-q", str(COMPOSE.parent / ".env")], cwd=REPO, check=False)
    assert ignored.returncode == 0, "infra/compose/.env must be git-ignored"


def test_secret_scan_finds_a_literal_credential():
    doc = load_yaml(COMPOSE)
    doc["services"]["minio"]["environment"]["MINIO_ROOT_PASSWORD"] = "hunter2hunter2"
    assert any("MINIO_ROOT_PASSWORD" in p for p in secret_literals(doc, "compose"))
    env = {"env": [{"name": "RAY_AUTH_TOKEN", "value": "0123456789abcdef"}]}
    assert secret_literals(env) == [".env[0]: env RAY_AUTH_TOKEN has a literal value"]
    assert text_secrets("remote: s3://AKIAABCDEFGHIJKLMNOP@bucket") == ["an AWS access key id"]
    assert text_secrets("postgresql://airflow:s3cret@db:5432/airflow") == ["a URL with a literal password"]


@pytest.mark.parametrize(
    "path",
    sorted(p for p in INFRA.rglob("*") if p.is_file() and p.name != ".gitignore"),
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_no_committed_infra_file_holds_a_credential(path):
    text = path.read_text(encoding="utf-8")
    assert text_secrets(text) == []
    if path.suffix in {".yaml", ".yml"}:
        assert [e for doc in yaml.safe_load_all(text) for e in secret_literals(doc, path.name)] == []
        kinds = {doc.get("kind") for doc in yaml.safe_load_all(text) if isinstance(doc, dict)}
        assert "Secret" not in kinds, "Secrets are created from the command line (infra/README.md), not committed"


# ----------------------------------------------------------------------------------------------------- images
def dockerfile_stages() -> dict[str, list[dict[str, Any]]]:
    """stage name -> its instructions, as dockerfile-parse reads infra/docker/Dockerfile."""
    parser = dockerfile_parse.DockerfileParser(path=str(DOCKERFILE))
    stages: dict[str, list[dict[str, Any]]] = {}
    current = None
    for ins in parser.structure:
        if ins["instruction"] == "FROM":
            current = ins["value"].split()[-1]
            stages[current] = []
        if current:
            stages[current].append(ins)
    return stages


def dockerfile_args() -> dict[str, str]:
    """Build arguments with their defaults (global and per stage)."""
    args = {}
    for ins in dockerfile_parse.DockerfileParser(path=str(DOCKERFILE)).structure:
        if ins["instruction"] == "ARG" and "=" in ins["value"]:
            key, value = ins["value"].split("=", 1)
            args[key] = value
    return args


def dockerfile_env(stage: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for ins in dockerfile_stages()[stage]:
        if ins["instruction"] == "ENV":
            env.update(dict(item.split("=", 1) for item in shlex.split(ins["value"].replace("\\", " "))))
    return env


def runs(stage: str) -> str:
    return "\n".join(i["value"] for i in dockerfile_stages()[stage] if i["instruction"] == "RUN")


def test_dockerfile_pins_the_projects_versions():
    args = dockerfile_args()
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    extras = pyproject["project"]["optional-dependencies"]
    assert args["RAY_VERSION"] == importlib.metadata.version("ray")
    pins = {Requirement(r).name: str(Requirement(r).specifier) for r in extras["ray"] + extras["models"]}
    assert pins["ray"] == f"=={args['RAY_VERSION']}"
    assert args["AIRFLOW_VERSION"] == importlib.metadata.version("apache-airflow")
    assert pins["torch"] == f"=={args['TORCH_VERSION']}"
    assert args["TORCH_INDEX_CPU"].endswith("/cpu"), "the CPU variant must not pull a CUDA torch"
    assert args["VARIANT"] == "cpu"
    for stage, instructions in dockerfile_stages().items():
        base = instructions[0]["value"].split()[0]
        assert re.search(r":\$\{[A-Z_]+\}|:[0-9]", base), f"{stage}: base image {base} is not pinned"


def test_worker_image_installs_the_ray_extras_under_the_lock_and_fetches_weights():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    commands = runs("worker")
    extras = re.search(r'"\.\[([a-z,]+)\]"', commands).group(1).split(",")
    assert {"ray", "video", "models"} <= set(extras) <= set(pyproject["project"]["optional-dependencies"])
    assert "--constraint requirements.lock" in commands
    assert re.search(r'"torch==\$\{TORCH_VERSION\}"', commands), "torch pinned before the package"
    assert commands.index("torch==") < commands.index('".['), "torch first, or pip pulls another build"
    assert "emopipe weights" in commands
    env = dockerfile_env("worker")
    copies = [i["value"] for i in dockerfile_stages()["worker"] if i["instruction"] == "COPY"]
    assert any(c.split()[-2:] == ["ray_jobs", env["EMOPIPE_RAY_JOBS_DIR"]] for c in copies)
    assert any(c.split()[-2:] == ["schemas", "./schemas"] for c in copies), "schemas ship inside the wheel"
    assert env["EMOPIPE_WEIGHTS_DIR"].startswith("/opt/emopipe/")


def test_airflow_image_holds_no_torch_but_the_job_sdk_and_the_s3_remote():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    optional = pyproject["project"]["optional-dependencies"]
    commands = runs("airflow")
    extras = re.search(r'"\.\[([a-z,]+)\]"', commands).group(1).split(",")
    assert "airflow" in extras and not {"models", "video"} & set(extras)
    assert set(extras) <= set(optional)
    names = {Requirement(r).name for extra in extras for r in optional[extra]}
    names |= {Requirement(r).name for r in optional["quality"] + optional["versioning"]}  # emopipe[quality,versioning]
    assert {"apache-airflow", "ray", "dvc", "dvc-s3"} <= names, "Airflow, the Jobs SDK, DVC with its s3:// remote"
    assert not {"torch", "decord", "av"} & names
    assert '"apache-airflow==${AIRFLOW_VERSION}"' in commands and "--constraint requirements.lock" in commands
    assert dockerfile_env("airflow")["EMOPIPE_RAY_JOBS_DIR"] == dockerfile_env("worker")["EMOPIPE_RAY_JOBS_DIR"]


# ----------------------------------------------------------------------------------------------------- params
@pytest.mark.parametrize("path", [PARAMS_CLUSTER, PARAMS_COMPOSE], ids=lambda p: p.name)
def test_infra_params_load_and_differ_from_params_yaml_only_where_the_deployment_needs(path):
    here, base = params_dict(path), params_dict(REPO / "params.yaml")
    assert here["validate"] == base["validate"], "a cluster run is gated by the reviewed thresholds"
    deployment = {"ray_address", "num_workers", "num_cpus", "num_gpus", "batch_size"}
    for stage in ("extract_features", "label_clips"):
        same = {k: v for k, v in here[stage].items() if k not in deployment}
        assert same == {k: v for k, v in base[stage].items() if k not in deployment}, f"{stage}: other rows"
    assert here["ray"]["dashboard_url"], "the Ray stages would run inside the Airflow task instead of on the cluster"
    assert here["ray"]["jobs_dir"] == dockerfile_env("worker")["EMOPIPE_RAY_JOBS_DIR"]
    assert here["ray"]["runtime_env"] is None, "the image holds emopipe; nothing is uploaded per job"
    assert here["work_dir"].startswith("/data/") and here["publish"]["data_repo"].startswith("/data/")
    assert here["publish"]["remote"].startswith("s3://")


def test_cluster_params_point_at_the_kuberay_head_and_compose_params_at_compose_services():
    cr = load_yaml(RAYCLUSTER)
    head = cr["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    dashboard = next(p["containerPort"] for p in head["ports"] if p["name"] == "dashboard")
    service = f"{cr['metadata']['name']}-head-svc.{cr['metadata']['namespace']}.svc.cluster.local"
    assert load_params(PARAMS_CLUSTER).ray.dashboard_url == f"http://{service}:{dashboard}"
    assert cr["spec"]["headGroupSpec"]["rayStartParams"]["dashboard-host"] == "0.0.0.0"

    compose = load_yaml(COMPOSE)["services"]
    params = load_params(PARAMS_COMPOSE)
    assert params.ray.dashboard_url == "http://ray-head:8265"
    assert "--dashboard-host=0.0.0.0" in compose["ray-head"]["command"]
    assert "--dashboard-port=8265" in compose["ray-head"]["command"]
    assert params.publish.remote_options["endpointurl"] == "http://minio:9000" and "minio" in compose
    bucket = params.publish.remote.removeprefix("s3://").split("/")[0]
    assert f"mc mb --ignore-existing admin/{bucket}" in compose["minio-init"]["command"][0]


def test_airflow_and_ray_share_one_uid_on_the_shared_volume():
    values = load_yaml(HELM_VALUES)
    services = load_yaml(COMPOSE)["services"]
    ray_uid = 1000  # the `ray` user of the rayproject/ray images
    assert (values["uid"], values["gid"]) == (ray_uid, 0)
    assert services["airflow-scheduler"]["user"] == f"{ray_uid}:0"
    assert "chown 1000:0 /data" in services["data-init"]["command"][-1]
    cr = load_yaml(RAYCLUSTER)
    for group, template in ray_pod_templates(cr).items():
        ctx = template["spec"].get("securityContext") or {}
        assert ctx.get("runAsUser", ray_uid) == ray_uid, group


def test_dvc_s3_fragment_is_a_valid_publish_section():
    fragment = load_yaml(DVC_FRAGMENT)
    assert set(fragment) == {"publish"}
    raw = load_yaml(REPO / "params.yaml") | fragment
    params: Params = parse_params(raw, REPO)
    assert params.publish.remote.startswith("s3://") and params.publish.aws_conn_id
    assert not {k.lower() for k in params.publish.remote_options} & {"access_key_id", "secret_access_key"}
    assert params.publish.model_dump()["remote"] == fragment["publish"]["remote"]
