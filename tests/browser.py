"""A real headless Chromium for the page tests: screenshots, the DOM it built, the text it shows, what it fetched."""

from __future__ import annotations

import html.parser
import json
import pathlib
import shutil
import subprocess

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# Chromium's own background traffic (time sync, sign-in, spelling dictionaries) is cut where flags allow; what is
# left is told apart from the page's requests by the network isolation key (file:// for a page opened from disk).
QUIET = (
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--no-first-run",
)


def browser() -> str:
    """The headless browser on PATH, or skip the test saying how to get one."""
    for name in BROWSERS:
        if path := shutil.which(name):
            return path
    pytest.skip(f"no headless browser ({', '.join(BROWSERS)}) on PATH; `apt-get install -y chromium` provides one")


def chromium(exe: str, profile: pathlib.Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--force-color-profile=srgb",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *QUIET,
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


class _Root(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.attrs: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "html":
            self.attrs = dict(attrs)


def visible_text(exe: str, page: pathlib.Path, scratch: pathlib.Path) -> str:
    """The text Chromium shows for `page` (document.body.innerText: hidden elements and closed details left out).

    A copy of the page gets one line of script that copies innerText into an attribute of <html>; the page itself
    is not changed.
    """
    scratch.mkdir(parents=True, exist_ok=True)
    probe = scratch / f"visible-{page.name}"
    script = '<script>document.documentElement.setAttribute("data-visible", document.body.innerText)</script>'
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", script + "</body>"), encoding="utf-8")
    done = chromium(exe, scratch / "profile-text", "--dump-dom", probe.resolve().as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    root = _Root()
    root.feed(done.stdout)
    return " ".join((root.attrs.get("data-visible") or "").split())


def page_requests(exe: str, page: pathlib.Path, scratch: pathlib.Path) -> list[str]:
    """Every URL the page asked for while Chromium loaded and laid it out (from Chromium's own net log)."""
    scratch.mkdir(parents=True, exist_ok=True)
    log = scratch / f"netlog-{page.name}.json"
    done = chromium(exe, scratch / "profile-net", f"--log-net-log={log}", "--dump-dom", page.resolve().as_uri())
    assert done.returncode == 0 and log.is_file(), done.stderr[-2000:]
    data = json.loads(log.read_text(encoding="utf-8", errors="replace"))
    start = data["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        e["params"]["url"]
        for e in data["events"]
        if e.get("type") == start and "file://" in str(e.get("params", {}).get("network_isolation_key", ""))
    ]
