"""Connect to Ray: a local instance by default, a cluster when an address is configured."""

from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import secrets
from collections.abc import Iterator

log = logging.getLogger(__name__)


def ensure_token_file() -> None:
    """Ray 2.60 authenticates with a token; where RAY_AUTH_TOKEN_PATH names a file not yet written, write one.

    Ray itself only creates a missing token at its default path (~/.ray/auth_token); the project keeps it
    in its own folder instead. A cluster's token must be the cluster's: this only fills a missing file.
    """
    if not (where := os.environ.get("RAY_AUTH_TOKEN_PATH")):
        return
    path = pathlib.Path(where)
    if path.is_file() and path.stat().st_size:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32))


# Ray's job supervisor sets this (and RAY_ADDRESS) in the environment of a submitted job's driver.
JOB_ENV_VAR = "RAY_JOB_CONFIG_JSON_ENV_VAR"


def in_submitted_job() -> bool:
    """Whether this process is the driver of a job submitted through the Ray Jobs API."""
    return JOB_ENV_VAR in os.environ


@contextlib.contextmanager
def connect(address: str | None, num_cpus: int | None = None) -> Iterator[None]:
    """Start local Ray (address None) or join a cluster; shut down on exit only what this call started.

    The driver of a submitted Ray job always joins the cluster that runs it (the supervisor names it in
    RAY_ADDRESS), whatever `address` says: that address is how the submitting side reaches the cluster.
    RAY_ADDRESS set by hand is honoured too, as `ray.init` does.
    """
    import ray

    if ray.is_initialized():
        yield
        return
    if in_submitted_job():
        if address:
            log.info("ray: running as a submitted job; joining the cluster that runs it, not %s", address)
        address = None
    joining = address is not None or bool(os.environ.get("RAY_ADDRESS"))
    kwargs: dict = {"log_to_driver": True}
    if not joining:
        ensure_token_file()
        kwargs["include_dashboard"] = False
        if num_cpus is not None:
            kwargs["num_cpus"] = num_cpus
    ray.init(address=address, **kwargs)
    where = address or os.environ.get("RAY_ADDRESS") or "a new local instance"
    log.info("ray: connected to %s; resources %s", where, ray.cluster_resources())
    try:
        yield
    finally:
        ray.shutdown()
