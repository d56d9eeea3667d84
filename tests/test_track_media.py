"""The upload function's side of live sync (integrations/track-media/), run
by Node's own test runner against the real console: runserver in a child
process, with its own database, on the world's MongoDB."""

import json
import os
import secrets
import shutil
import socket
import subprocess
import time

import pytest

from tests.plugins.processes import ROOT
from tests.waiting import wait_for

pytestmark = [pytest.mark.pds, pytest.mark.django_db, pytest.mark.slow]
NODE_TESTS = ROOT / "integrations" / "track-media" / "painting-sync.test.mjs"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"runserver stopped:\n{process.stdout.read()}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError("runserver did not start")


def state_of(console, ref: str) -> str:
    """The row's status in the console's own database, read as SQL (a
    ``manage.py shell`` per look would cost a Django start-up each)."""
    found = console.query("select status from migrator_transfer where ref = %s", ref)
    return found[0][0] if found else "absent"


def test_the_upload_functions_client_against_the_real_console_and_cluster(world, console, tmp_path):
    node = shutil.which("node")
    assert node, "Node.js is needed for the upload function's tests"
    secret = secrets.token_urlsafe(24)
    console.env["SYNC_WEBHOOK_SECRET"] = secret
    now, later = world.add_painting(), world.add_painting()
    from migrator.kinds import KINDS

    mood = world.add_document(KINDS["mood"], handle=next(iter(world.users)), mood="uploaded just now")
    port = free_port()
    server = console.start("runserver", f"127.0.0.1:{port}", "--noreload")
    try:
        wait_for_port(port, server)
        env = {**os.environ, "HOOK_URL": f"http://127.0.0.1:{port}/hooks/painting", "HOOK_SECRET": secret, "REF_NOW": now, "REF_LATER": later, "REF_MOOD": mood}
        result = subprocess.run([node, "--test", str(NODE_TESTS)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "# pass 8" in result.stdout and "# fail 0" in result.stdout
    finally:
        console.kill(server)

    assert state_of(console, now) == "queued"
    assert state_of(console, mood) == "queued"
    # The call for this one never reached the console; the schedule brings it.
    assert state_of(console, later) == "absent"
    console.run("shell", "-c", "from migrator import tasks; tasks.live_sync()")
    assert state_of(console, later) == "queued"

    # And a real cluster, on the default broker (the console's own database),
    # takes both jobs to the PDS.
    log = tmp_path / "qcluster.log"
    cluster = console.start("qcluster", log=log)
    try:
        wait_for(
            lambda: {state_of(console, now), state_of(console, later), state_of(console, mood)} == {"migrated"},
            timeout=90, what="the cluster to migrate all three", explain=lambda: log.read_text()[-3000:],
        )  # fmt: skip
    finally:
        console.kill(cluster)
    assert {state_of(console, now), state_of(console, later), state_of(console, mood)} == {"migrated"}, log.read_text()[-3000:]
    assert list(world.records(KINDS["mood"])) == [mood]
    records = world.records()
    assert len(records[now]) == 1 and len(records[later]) == 1
