"""An S3 remote through configuration alone, against a real S3-compatible server (moto in server mode) on loopback.

The server enforces IAM authentication (moto's reset-auth), so wrong or missing credentials really are refused.
Credentials come from the environment or from an Airflow connection and must never land in a committed file.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import pytest

from emopipe import remotes, versioning
from emopipe.config import PublishConfig, load_params
from tests.conftest import write_params
from tests.test_versioning import _validated

boto3 = pytest.importorskip("boto3", reason="the S3 tests need the `test` extra (moto[server], boto3)")
pytest.importorskip("moto.server", reason="the S3 tests need the `test` extra (moto[server])")

REGION = "us-east-1"
CONN_ID = "emopipe_s3_test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_moto(log: pathlib.Path) -> tuple[subprocess.Popen, str]:
    for _ in range(3):  # the port may be taken between choosing and binding it: try another
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=2).close()
                return proc, url
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.2)
        proc.kill()
        proc.wait()
    raise RuntimeError(f"moto server did not start; log:\n{log.read_text()[-3000:]}")


class S3:
    """The running server, one IAM user allowed s3:* and a client signed with that user's key."""

    def __init__(self, url: str, key_id: str, secret: str) -> None:
        self.url, self.key_id, self.secret = url, key_id, secret
        self.client = boto3.client(
            "s3", endpoint_url=url, region_name=REGION, aws_access_key_id=key_id, aws_secret_access_key=secret
        )

    def new_bucket(self) -> str:
        name = f"emopipe-{uuid.uuid4().hex[:12]}"
        self.client.create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> set[str]:
        keys: set[str] = set()
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys |= {o["Key"] for o in page.get("Contents", [])}
        return keys


@pytest.fixture(scope="module")
def moto_s3(tmp_path_factory):
    """A moto S3 server subprocess on a free loopback port, with authentication switched on after bootstrap."""
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    proc, url = _start_moto(log)
    try:
        boot = {"endpoint_url": url, "region_name": REGION, "aws_access_key_id": "boot", "aws_secret_access_key": "x"}
        iam = boto3.client("iam", **boot)
        iam.create_user(UserName="publisher")
        key = iam.create_access_key(UserName="publisher")["AccessKey"]
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        iam.put_user_policy(UserName="publisher", PolicyName="s3", PolicyDocument=json.dumps(policy))
        # From now on every request must be signed by a known key with the rights it needs.
        req = urllib.request.Request(
            f"{url}/moto-api/reset-auth", data=b"0", method="POST", headers={"Content-Type": "text/plain"}
        )
        urllib.request.urlopen(req, timeout=10).close()
        yield S3(url, key["AccessKeyId"], key["SecretAccessKey"])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def no_aws_env(monkeypatch, tmp_path):
    """No AWS credentials anywhere: no variables, no ~/.aws files, no instance metadata."""
    for var in list(os.environ):
        if var.startswith("AWS_") or var.startswith("AIRFLOW_CONN_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def _s3_params(folder: pathlib.Path, bucket: str, **publish):
    return load_params(write_params(folder, publish={"remote": f"s3://{bucket}/emopipe", **publish}))


def _md5(path: pathlib.Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _dataset_files(folder: pathlib.Path) -> dict[str, pathlib.Path]:
    """A dataset folder's files (relative name -> path)."""
    return {str(p.relative_to(folder)): p for p in sorted(folder.rglob("*")) if p.is_file()}


def _assert_published_to_s3_and_reproducible(params, folder, s3: S3, bucket: str, tmp_path: pathlib.Path) -> None:
    # What was versioned: the validated folder's tables as they are, with the manifest, lineage and reports that
    # publish adds (the reports name the version).
    files = _dataset_files(params.publish.data_repo / "dataset")
    validated = _dataset_files(folder)
    assert any(n.startswith("clips/part-") for n in files) and "validation.json" in files
    for name in (n for n in validated if n.startswith(("clips/", "features/", "labels/")) or n == "validation.json"):
        assert files[name].read_bytes() == validated[name].read_bytes(), name

    # Every file's content is an object in the bucket, under the configured prefix (DVC's content addressing).
    keys = s3.keys(bucket)
    missing = [n for n, p in files.items() if f"emopipe/files/md5/{_md5(p)[:2]}/{_md5(p)[2:]}" not in keys]
    assert not missing, f"not in s3://{bucket}/emopipe: {missing}"

    # The clone knows where the data is from the committed config alone.
    repo = params.publish.data_repo
    committed = versioning.git(repo, "show", "v1:.dvc/config")
    assert f"s3://{bucket}/emopipe" in committed

    # Nothing local to pull from: the data repo's own cache is gone, so the checkout must read the bucket.
    subprocess.run(["rm", "-rf", str(repo / ".dvc" / "cache")], check=True)
    dest = versioning.checkout(params, "v1", tmp_path / "fresh")
    for name, path in files.items():
        assert (dest / "dataset" / name).read_bytes() == path.read_bytes(), name


def _assert_secret_nowhere(secret: str, repo: pathlib.Path, *texts_files: pathlib.Path) -> None:
    """Not in any commit of any branch or tag, nor in commit or tag messages, nor in the given files."""
    revs = versioning.git(repo, "rev-list", "--all").split()
    assert revs
    grep = ["git", "grep", "-F", "-l", secret, *revs]
    hit = subprocess.run(grep, cwd=repo, capture_output=True, text=True, check=False)
    assert hit.returncode == 1, f"secret committed in the data repository: {hit.stdout[:500]}"
    messages = versioning.git(repo, "log", "--all", "--format=%B") + versioning.git(repo, "tag", "-n999")
    assert secret not in messages
    assert not (repo / ".dvc" / "config.local").exists()
    for path in texts_files:
        assert secret not in path.read_text(), path


def test_publish_to_s3_with_environment_credentials(tiny_corpus, tmp_path, moto_s3, no_aws_env, monkeypatch):
    bucket = moto_s3.new_bucket()
    params = _s3_params(
        tmp_path / "cfg", bucket, remote_options={"endpointurl": moto_s3.url, "region": REGION, "use_ssl": False}
    )
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", moto_s3.key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", moto_s3.secret)
    gate, folder = _validated(tiny_corpus, tmp_path / "run1", params)
    assert gate.success

    res = versioning.publish(params, folder, "run-1")
    assert (res.version, res.created) == ("v1", True)
    assert f"s3://{bucket}/emopipe" in res.message
    committed = versioning.git(params.publish.data_repo, "show", "v1:.dvc/config")
    assert f"endpointurl = {moto_s3.url}" in committed and "use_ssl = false" in committed
    _assert_published_to_s3_and_reproducible(params, folder, moto_s3, bucket, tmp_path)
    _assert_secret_nowhere(moto_s3.secret, params.publish.data_repo, params.source)


def test_publish_to_s3_with_an_airflow_connection(tiny_corpus, tmp_path, moto_s3, no_aws_env, monkeypatch):
    """Key, secret, endpoint and region all come from the connection; params.yaml only names it."""
    bucket = moto_s3.new_bucket()
    conn = {
        "conn_type": "aws",
        "login": moto_s3.key_id,
        "password": moto_s3.secret,
        "extra": {"endpoint_url": moto_s3.url, "region_name": REGION},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
    params = _s3_params(tmp_path / "cfg", bucket, aws_conn_id=CONN_ID)
    _, folder = _validated(tiny_corpus, tmp_path / "run1", params)

    res = versioning.publish(params, folder, "run-1")
    assert (res.version, res.created) == ("v1", True)
    assert versioning.lineage(params.publish.data_repo, "v1")["params"]["publish"]["aws_conn_id"] == CONN_ID
    _assert_published_to_s3_and_reproducible(params, folder, moto_s3, bucket, tmp_path)
    _assert_secret_nowhere(moto_s3.secret, params.publish.data_repo, params.source)
    assert moto_s3.secret not in os.environ.values()  # given to the dvc subprocess only


@pytest.mark.timeout(300)
def test_missing_or_wrong_credentials_fail_clearly(tiny_corpus, tmp_path, moto_s3, no_aws_env, monkeypatch):
    bucket = moto_s3.new_bucket()
    params = _s3_params(tmp_path / "cfg", bucket, remote_options={"endpointurl": moto_s3.url, "region": REGION})
    _, folder = _validated(tiny_corpus, tmp_path / "run1", params)
    repo = params.publish.data_repo

    with pytest.raises(versioning.CommandFailed, match="Unable to locate credentials"):
        versioning.publish(params, folder, "run-1")
    assert versioning.versions(repo, "v") == [] and moto_s3.keys(bucket) == set()

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", moto_s3.key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(versioning.CommandFailed, match="Forbidden|SignatureDoesNotMatch|InvalidAccessKeyId"):
        versioning.publish(params, folder, "run-1")
    assert versioning.versions(repo, "v") == [] and moto_s3.keys(bucket) == set()
    assert "lineage.json" not in versioning.git(repo, "ls-files")

    # A connection id that Airflow does not know: refused before anything runs.
    missing = _s3_params(tmp_path / "cfg2", bucket, aws_conn_id="no_such_conn")
    with pytest.raises(remotes.RemoteConfigError, match="AIRFLOW_CONN_NO_SUCH_CONN"):
        versioning.publish(missing, folder, "run-1")
    assert not missing.publish.data_repo.exists()


def test_remote_change_is_committed_and_idempotent(tmp_path):
    """Switching from the default folder remote to S3 commits .dvc/config once; repeating changes nothing."""
    local = load_params(write_params(tmp_path / "cfg")).publish
    assert "://" not in local.remote  # the default stays a local folder
    repo = versioning.ensure_data_repo(local)
    assert pathlib.Path(local.remote).is_dir()

    def commits() -> int:
        return int(versioning.git(repo, "rev-list", "--count", "HEAD"))

    versioning.ensure_data_repo(local)
    assert commits() == 1
    options = {"endpointurl": "http://127.0.0.1:9", "region": REGION}
    s3 = PublishConfig(data_repo=repo, remote="s3://bucket/emopipe", remote_options=options)
    versioning.ensure_data_repo(s3)
    versioning.ensure_data_repo(s3)
    assert commits() == 2
    assert versioning.git(repo, "log", "-1", "--format=%s") == "Data remote: s3://bucket/emopipe\n"
    config = versioning.git(repo, "show", "HEAD:.dvc/config")
    assert "url = s3://bucket/emopipe" in config and "endpointurl = http://127.0.0.1:9" in config
    assert versioning.git(repo, "status", "--porcelain") == ""
    # Dropping an option removes it from the config again.
    versioning.ensure_data_repo(PublishConfig(data_repo=repo, remote="s3://bucket/emopipe"))
    assert "endpointurl" not in versioning.git(repo, "show", "HEAD:.dvc/config") and commits() == 3


@pytest.mark.parametrize(
    ("publish", "match"),
    [
        ({"remote": "s3://b/p", "remote_options": {"secret_access_key": "abc"}}, "is a credential"),
        ({"remote": "s3://b/p", "remote_options": {"access_key_id": "AKIA"}}, "is a credential"),
        ({"remote": "s3://b/p", "remote_options": {"session_token": "t"}}, "is a credential"),
        ({"remote": "s3://AKIA:abc@b/p"}, "must not contain credentials"),
        ({"remote": "s3://b/p", "remote_options": ["endpointurl"]}, "must be a mapping"),
        ({"remote": "s3://b/p", "remote_options": {"endpointurl": {"x": 1}}}, "string, number or boolean"),
        ({"remote": "s3://b/p", "remote_options": {"url": "s3://c"}}, "URL is publish.remote"),
        ({"aws_conn_id": "aws_default"}, "not an s3:// URL"),
        ({"remote": "s3://b/p", "aws_conn_id": " "}, "Airflow connection id"),
    ],
)
def test_secrets_and_bad_remote_settings_are_refused(tmp_path, publish, match):
    with pytest.raises(ValueError, match=match):
        load_params(write_params(tmp_path, publish=publish))


def test_connection_env_maps_the_amazon_provider_fields(no_aws_env, monkeypatch):
    conn = {"conn_type": "aws", "login": "AKIAX", "password": "s3cr3t", "extra": {"aws_session_token": "tok"}}
    monkeypatch.setenv("AIRFLOW_CONN_HALF", json.dumps({"conn_type": "aws", "login": "AKIAX"}))
    monkeypatch.setenv("AIRFLOW_CONN_FULL", json.dumps(conn))
    monkeypatch.setenv("AWS_PROFILE", "someone-else")
    assert remotes.connection_env("full") == {
        "AWS_ACCESS_KEY_ID": "AKIAX",
        "AWS_SECRET_ACCESS_KEY": "s3cr3t",
        "AWS_SESSION_TOKEN": "tok",
    }
    with pytest.raises(remotes.RemoteConfigError, match="no secret access key"):
        remotes.connection_env("half")
    with remotes.credentials("s3://b/p", "full"):
        env = versioning._env()
    assert env["AWS_SECRET_ACCESS_KEY"] == "s3cr3t" and "AWS_PROFILE" not in env  # the connection wins
    assert "AWS_SECRET_ACCESS_KEY" not in versioning._env()  # and only inside the block
    assert "AWS_SECRET_ACCESS_KEY" not in os.environ  # never set in our own process's environment


def test_the_remote_settings_are_read_as_dvc_reads_them(tmp_path):
    """publish reads .dvc/config itself (no dvc process); it must see what `dvc config --list` sees."""
    from emopipe import remotes

    options = {"endpointurl": "http://127.0.0.1:9", "region": REGION, "use_ssl": False}
    repo = versioning.ensure_data_repo(
        PublishConfig(data_repo=tmp_path / "repo", remote="s3://bucket/p", remote_options=options)
    )

    def no_dvc(*args):
        raise AssertionError(f"dvc was run: {args}")

    read = remotes.current_settings(repo, no_dvc)
    listed: dict[str, str] = {}
    for line in versioning.dvc(repo, "config", "--project", "--list").splitlines():
        key, _, value = line.partition("=")
        if key.startswith("remote.default."):
            listed[key.removeprefix("remote.default.")] = value
    assert read == (listed, "default")
    assert read[0] == {
        "url": "s3://bucket/p",
        "endpointurl": "http://127.0.0.1:9",
        "region": REGION,
        "use_ssl": "false",
    }
