"""bench/latency_proxy.py, and the console talking only to PDS_URL.

The proxy stands between the console and the local PDS: every round trip
through it takes the delay more, and once the proxy is stopped nothing the
console sends reaches the PDS, though the accounts' DID documents name the
PDS's own address, and so do the sessions stored before PDS_URL changed
(the SDK alone would move to that address)."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from migrator import pds
from tests.plugins.pds import create_test_account

pytestmark = [pytest.mark.pds]
PROXY = Path(__file__).resolve().parents[1] / "bench" / "latency_proxy.py"


@pytest.fixture
def proxy(pds, settings):
    target = settings.PDS_URL.removeprefix("http://")
    process = subprocess.Popen([sys.executable, str(PROXY), "--target", target, "--delay-ms", "80"], stdout=subprocess.PIPE, text=True)
    port = json.loads(process.stdout.readline())["port"]
    yield process, f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


def test_every_call_goes_through_pds_url_with_the_proxys_delay(proxy, settings):
    process, url = proxy
    user = create_test_account()
    pds.repo_for(did=user.did, password=user.password)  # a login on the PDS's own address: the stored session names it
    settings.PDS_URL = url  # the operator moves the console to another address (here: the proxy)
    pds.forget_sessions()
    repo = pds.repo_for(did=user.did)  # from the stored session, as a new process would

    started = time.monotonic()
    repo.records_list(collection="computer.aesthetic.painting")
    assert time.monotonic() - started >= 0.08  # one round trip, through the proxy

    process.terminate()
    process.wait(timeout=10)
    with pytest.raises(pds.PdsError) as failure:
        repo.records_list(collection="computer.aesthetic.painting")
    assert "no response" in failure.value.message
