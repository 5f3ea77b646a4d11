"""Apprise URLs are judged by Apprise itself and refused without showing their text:
by `url_problem`, and by `load_secrets` for a `[notify] urls_file`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from daemon.config import ConfigError, load_config, load_secrets
from daemon.publish.notify_urls import scheme_of, url_problem
from tests.harness import daemon_config, secret_file
from tests.notify.conftest import TOKEN

# Bounds the child interpreter that imports the publisher.
CHILD_TIMEOUT = 30.0


@pytest.mark.parametrize(("url", "named"), [
    (TOKEN, "no scheme://"),
    (f"tgram://{TOKEN}", "tgram://"),
    (f"nosuchservice://{TOKEN}@127.0.0.1/x", "nosuchservice://"),
    (f"https://127.0.0.1/{TOKEN}", "https://"),
    ("json://", "json://"),
])
def test_url_problem_refuses_garbage_naming_only_the_scheme(
        url: str, named: str, capfd: pytest.CaptureFixture[str]) -> None:
    problem = url_problem(url)
    assert problem is not None and named in problem
    assert TOKEN not in problem
    out = capfd.readouterr()
    assert TOKEN not in out.out + out.err   # Apprise's own log lines stay quiet too


def test_url_problem_accepts_a_usable_url() -> None:
    assert url_problem(f"json://user:{TOKEN}@127.0.0.1:9/notify") is None
    assert url_problem(f"ntfy://127.0.0.1/{TOKEN}") is None


def test_scheme_of_shows_nothing_of_a_line_without_a_scheme() -> None:
    assert scheme_of("  NTFYS://host/topic") == "ntfys"
    assert scheme_of(TOKEN) == "(none)"
    assert scheme_of(f"{TOKEN}%://x") == "(none)"


def test_load_secrets_names_the_file_and_line_of_a_bad_url_not_its_text(
        tmp_path: Path) -> None:
    urls = secret_file(tmp_path / "notify.urls", "\n".join([
        "# the office phone",
        f"json://user:{TOKEN}@127.0.0.1:9/notify",
        "",
        f"tgram://{TOKEN}",
    ]))
    cfg = load_config(daemon_config(tmp_path, notify={"urls_file": urls.name}))
    with pytest.raises(ConfigError) as caught:
        load_secrets(cfg)
    [problem] = caught.value.problems
    assert problem.startswith(f"notify.urls_file: {urls} line 4: ")
    assert "tgram://" in problem
    assert TOKEN not in str(caught.value)


def test_load_secrets_reads_the_good_urls(tmp_path: Path) -> None:
    urls = secret_file(tmp_path / "notify.urls", f"json://user:{TOKEN}@127.0.0.1:9/n\n"
                       f"# ntfy://127.0.0.1/{TOKEN}\n")
    cfg = load_config(daemon_config(tmp_path, notify={"urls_file": urls.name}))
    secrets = load_secrets(cfg)
    assert [u.reveal() for u in secrets.notify_urls] == [
        f"json://user:{TOKEN}@127.0.0.1:9/n"]
    assert TOKEN not in repr(secrets)


def test_importing_the_publisher_does_not_import_apprise() -> None:
    """Without [notify] the daemon never pays Apprise's memory (tens of MB loaded)."""
    probe = ("import sys, daemon.publish.notify, daemon.publish.notify_urls, daemon.config; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] == 'apprise'))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=CHILD_TIMEOUT, check=True)
    assert done.stdout.strip() == "[]"
