"""The console served as production serves it: ``manage.py serve`` (gunicorn
and WhiteNoise, DEBUG off, production's settings) in a child process on a
free port, with a database of its own that a real migration filled, driven
by a real browser and scraped as Prometheus would."""

import json
import re
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from migrator.kinds import KINDS
from tests.plugins.console import PASSWORD
from tests.plugins.kinds import document_fields
from tests.plugins.processes import ROOT

pytestmark = [pytest.mark.pds, pytest.mark.slow, pytest.mark.django_db]
TOKEN = secrets.token_urlsafe(24)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def served(console, world, tmp_path):
    """A migrated world (paintings, one skipped for its missing image; moods),
    a staff login, and the console serving it as production does."""
    handle = next(iter(world.users))
    for _ in range(3):
        world.add_painting(handle=handle)
    world.add_painting(handle=handle, image=False)
    for number in range(2):
        world.add_document(KINDS["mood"], handle=handle, **document_fields(KINDS["mood"], number))
    console.run("backfill", "all")
    console.run("shell", "-c", "from migrator import tasks; tasks.live_sync()")  # live sync's schedule, run once: /health asks for it
    console.env["DJANGO_SUPERUSER_PASSWORD"] = PASSWORD
    console.run("createsuperuser", "--noinput", "--username", "ops", "--email", "ops@example.test")
    port = free_port()
    console.env |= {
        "DEBUG": "false", "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "127.0.0.1", "METRICS_TOKEN": TOKEN,
        "PORT": str(port), "WEB_CONCURRENCY": "2", "HEALTH_REQUIRE_CLUSTER": "false", "LOG_FORMAT": "json",
        # From the environment, as production's: the key the migration's secrets were stored with (generated into VAR_DIR).
        "SECRETS_ENCRYPTION_KEYS": (Path(console.env["VAR_DIR"]) / "secrets_key").read_text().strip(),
    }  # fmt: skip
    log = tmp_path / "serve.log"
    server = console.start("serve", log=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:  # up once a worker answers (a loaded machine can take longer than one request's timeout)
                requests.get(f"{url}/admin/login/", timeout=30)
                break
            except requests.RequestException:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"manage.py serve did not answer:\n{log.read_text()[-3000:]}")
                time.sleep(0.2)
        yield url, console, log
    finally:
        console.kill(server)


def test_production_serves_a_complete_admin_health_and_metrics_that_agree(served, browser_page):
    url, console, log = served
    page = browser_page
    assets = {}
    page.on("response", lambda response: assets.__setitem__(response.url, response) if "/static/" in response.url else None)

    page.goto(f"{url}/admin/login/?next=/admin/migrator/transfer/dashboard/")
    page.fill("#id_username", "ops")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/dashboard/")
    page.wait_for_load_state("networkidle")

    # The admin's stylesheets and scripts, by their hashed names, from the app itself.
    css = [address for address in assets if address.endswith(".css")]
    js = [address for address in assets if address.endswith(".js")]
    assert css and js, sorted(assets)
    for address, response in assets.items():
        assert response.status == 200, address
        assert re.search(r"\.[0-9a-f]{12}\.(css|js|svg|png|woff2?)$", address), f"not a hashed name: {address}"
    assert all(assets[address].headers["content-type"].startswith("text/css") for address in css)
    assert all(re.match(r"(text|application)/javascript", assets[address].headers["content-type"]) for address in js)
    assert "max-age=315360000" in assets[css[0]].headers["cache-control"]  # cached for years: the name changes with the file
    assert page.evaluate("getComputedStyle(document.querySelector('#header')).backgroundColor") != "rgba(0, 0, 0, 0)"  # styled

    board = json.loads(page.evaluate("fetch('/admin/migrator/transfer/dashboard/status.json').then(r => r.text())"))
    page.goto(f"{url}/admin/migrator/transfer/?kind=mood")
    assert page.locator("#result_list tbody tr").count() == 2

    assert requests.get(f"{url}/health", timeout=30).status_code == 200, requests.get(f"{url}/health", timeout=30).text
    refused = requests.get(f"{url}/metrics", timeout=30)
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
    scraped = requests.get(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert scraped.status_code == 200
    documents = {}
    for family in text_string_to_metric_families(scraped.text):
        if family.name == "migrator_documents":
            for sample in family.samples:
                documents.setdefault(sample.labels["kind"], {})[sample.labels["status"]] = sample.value
    assert {kind: {status: n for status, n in counts.items() if n} for kind, counts in documents.items()} == {
        KINDS[kind].name: counts for kind, counts in {"painting": board["kinds"]["paintings"], "mood": board["kinds"]["moods"]}.items()
    }
    assert documents["painting"]["migrated"] == 3 and documents["painting"]["skipped"] == 1 and documents["mood"]["migrated"] == 2

    # Production's log: one JSON object a line, and no secret in any.
    lines = [line for line in log.read_text().splitlines() if line.startswith("{")]
    assert any(json.loads(line).get("logger") == "gunicorn.access" for line in lines)
    text = log.read_text()
    for secret in (TOKEN, console.env["SECRET_KEY"], PASSWORD, console.env["PDS_ADMIN_PASSWORD"]):
        assert secret not in text


def test_a_bad_web_setting_stops_serve_before_it_binds(console):
    console.env |= {"WEB_CONCURRENCY": "many"}
    result = subprocess.run([sys.executable, "manage.py", "serve"], cwd=ROOT, env=console.env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "WEB_CONCURRENCY" in result.stderr and "Serving" not in result.stdout
