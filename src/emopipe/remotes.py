"""DVC remotes of the data repository: a local folder by default, or a URL such as s3://bucket/prefix.

What goes where:

* `publish.remote` (the URL) and `publish.remote_options` (non-secret DVC remote settings such as `endpointurl`,
  `region`, `profile`, `use_ssl`) are written to the data repository's `.dvc/config`, which is committed, so a
  clone knows where to pull from.
* Credentials are never written to a file. They reach the `dvc` subprocesses through their environment only:
  either the ordinary AWS variables of the calling process (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
  AWS_SESSION_TOKEN, AWS_PROFILE, AWS_ENDPOINT_URL, ...), which DVC's S3 client reads as any AWS client does, or,
  when `publish.aws_conn_id` names an Airflow connection, that connection's login (access key id), password
  (secret access key) and extras `aws_session_token`, `region_name`, `endpoint_url` (the fields the Amazon provider
  uses; the provider itself is not needed). Inside an Airflow task the connection comes from Airflow (UI, CLI,
  secrets backend); elsewhere (the `emopipe` CLI) from an `AIRFLOW_CONN_<ID>` environment variable or a
  configured secrets backend.

Options that hold secrets (`access_key_id`, `secret_access_key`, `session_token`, `sse_customer_key`) are refused
in params.yaml, and so is a remote URL with a password in it: params.yaml and the lineage records are committed.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

REMOTE_NAME = "default"

# DVC remote settings that are credentials: never in params.yaml, never in .dvc/config.
SECRET_OPTIONS = frozenset({"access_key_id", "secret_access_key", "session_token", "sse_customer_key", "password"})

# Variables that would make the AWS client pick other credentials than an Airflow connection's.
_AWS_CREDENTIAL_VARS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
)

_overrides: contextvars.ContextVar[dict[str, str | None] | None] = contextvars.ContextVar(
    "emopipe_remote_env", default=None
)


class RemoteConfigError(ValueError):
    """The remote, its options or its credential source are misconfigured."""


class _DvcRunner(Protocol):
    def __call__(self, repo: Any, *args: str) -> str: ...


def scheme(remote: str) -> str:
    """'s3', 'gs', ... for a URL; '' for a local folder."""
    return urlsplit(remote).scheme.lower() if "://" in remote else ""


def is_local(remote: str) -> bool:
    """A folder path (not a URL)."""
    return "://" not in remote


def check(remote: str, options: Mapping[str, Any], aws_conn_id: str | None) -> None:
    """Refuse secrets in params.yaml and options that cannot work; raises RemoteConfigError with the reason."""
    if not remote or not str(remote).strip():
        raise RemoteConfigError("publish.remote must be a folder or a URL such as s3://bucket/prefix")
    if "://" in remote and urlsplit(remote).password is not None:
        raise RemoteConfigError(
            "publish.remote must not contain credentials (user:password@...): params.yaml is committed. "
            "Give them through the environment or publish.aws_conn_id."
        )
    if not isinstance(options, Mapping):
        raise RemoteConfigError("publish.remote_options must be a mapping of DVC remote settings")
    for key, value in options.items():
        if not isinstance(key, str) or not key:
            raise RemoteConfigError(f"publish.remote_options: bad key {key!r}")
        if key.lower() in SECRET_OPTIONS:
            raise RemoteConfigError(
                f"publish.remote_options.{key} is a credential and would be committed with params.yaml and the "
                "data repository; set it in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
                "AWS_SESSION_TOKEN) or in the Airflow connection named by publish.aws_conn_id"
            )
        if key.lower() == "url":
            raise RemoteConfigError("publish.remote_options.url: the URL is publish.remote")
        if not isinstance(value, str | int | float | bool):
            raise RemoteConfigError(f"publish.remote_options.{key} must be a string, number or boolean")
    if aws_conn_id is not None:
        if not isinstance(aws_conn_id, str) or not aws_conn_id.strip():
            raise RemoteConfigError("publish.aws_conn_id must be an Airflow connection id")
        if scheme(remote) != "s3":
            raise RemoteConfigError(f"publish.aws_conn_id is set but publish.remote is not an s3:// URL: {remote}")


def _dvc_value(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def desired_settings(remote: str, options: Mapping[str, Any]) -> dict[str, str]:
    """The `remote "default"` section the data repository's .dvc/config should hold."""
    return {"url": remote, **{k: _dvc_value(v) for k, v in sorted(options.items())}}


def current_settings(repo: Any, dvc: _DvcRunner) -> tuple[dict[str, str], str | None]:
    """The project-level settings of the remote `default` and the name of the default remote.

    Read from the repository's `.dvc/config` with the parser DVC itself uses (configobj, DVC's defaults), which
    costs milliseconds where a `dvc config --list` process costs ~0.6 s on every publish; a file this cannot read
    plainly (a list value, a parse error) is asked of `dvc config` instead.
    """
    import pathlib

    prefix = f"remote.{REMOTE_NAME}."
    try:
        from configobj import ConfigObj

        path = pathlib.Path(repo) / ".dvc" / "config"
        parsed = ConfigObj(str(path)) if path.is_file() else ConfigObj()
        remote, core = parsed.get(f'remote "{REMOTE_NAME}"', {}), parsed.get("core", {})
        if all(isinstance(v, str) for v in [*remote.values(), *core.values()]):
            return dict(remote), core.get("remote")
    except Exception as err:  # noqa: BLE001 - any doubt: DVC reads its own file below
        log.debug("reading %s/.dvc/config directly failed (%s); asking dvc", repo, err)
    settings: dict[str, str] = {}
    default = None
    for line in dvc(repo, "config", "--project", "--list").splitlines():
        key, _, value = line.partition("=")
        if key.startswith(prefix):
            settings[key[len(prefix) :]] = value
        elif key == "core.remote":
            default = value
    return settings, default


def configure(repo: Any, remote: str, options: Mapping[str, Any], dvc: _DvcRunner) -> bool:
    """Make the project config's remote `default` exactly `remote` + `options`; True when anything changed."""
    want = desired_settings(remote, options)
    have, default = current_settings(repo, dvc)
    if have == want and default == REMOTE_NAME:
        return False
    dvc(repo, "remote", "add", "--project", "-f", "-d", REMOTE_NAME, remote)  # replaces the whole section
    for key, value in want.items():
        if key != "url":
            dvc(repo, "remote", "modify", "--project", REMOTE_NAME, key, value)
    log.info("data repository %s: DVC remote %s %s", repo, remote, {k: v for k, v in want.items() if k != "url"})
    return True


def connection_env(conn_id: str) -> dict[str, str]:
    """AWS variables from an Airflow connection (login/password + extras), for the dvc subprocess only."""
    try:
        from airflow.sdk import Connection
    except ImportError as err:  # pragma: no cover - the airflow extra is not installed
        raise RemoteConfigError(
            f"publish.aws_conn_id={conn_id!r} needs Airflow (pip install 'emopipe[airflow]') to read the connection"
        ) from err
    try:
        conn = Connection.get(conn_id)
    except Exception as err:  # AirflowNotFoundException and friends
        raise RemoteConfigError(
            f"Airflow connection {conn_id!r} (publish.aws_conn_id) could not be read: {err}. Define it in Airflow "
            f"or as the environment variable AIRFLOW_CONN_{conn_id.upper()}"
        ) from err
    extra = conn.extra_dejson or {}
    key_id = conn.login or extra.get("aws_access_key_id")
    secret = conn.password or extra.get("aws_secret_access_key")
    if bool(key_id) != bool(secret):
        raise RemoteConfigError(
            f"Airflow connection {conn_id!r} has an access key id but no secret access key, or the reverse "
            "(login = access key id, password = secret access key)"
        )
    env: dict[str, str] = {}
    if key_id:
        env.update(AWS_ACCESS_KEY_ID=str(key_id), AWS_SECRET_ACCESS_KEY=str(secret))
        if token := extra.get("aws_session_token"):
            env["AWS_SESSION_TOKEN"] = str(token)
    else:
        log.warning("Airflow connection %r holds no keys; the AWS default credential chain applies", conn_id)
    if region := extra.get("region_name"):
        env["AWS_DEFAULT_REGION"] = str(region)
    if endpoint := extra.get("endpoint_url"):
        env["AWS_ENDPOINT_URL_S3"] = str(endpoint)
    return env


def subprocess_env(base: Mapping[str, str]) -> dict[str, str]:
    """`base` with the credentials of the active `credentials()` block applied (None removes a variable)."""
    env = dict(base)
    for key, value in (_overrides.get() or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


@contextlib.contextmanager
def credentials(remote: str, aws_conn_id: str | None) -> Iterator[None]:
    """Within this block, dvc subprocesses get the remote's credentials (from the Airflow connection, if any).

    Without a connection id nothing changes: the process environment is passed on as it is. The connection is
    read once, on entry, so a missing or half-filled connection fails before any work is done.
    """
    if aws_conn_id is None or is_local(remote):
        yield
        return
    env: dict[str, str | None] = dict.fromkeys(_AWS_CREDENTIAL_VARS)
    env.update(connection_env(aws_conn_id))
    token = _overrides.set(env)
    try:
        yield
    finally:
        _overrides.reset(token)
