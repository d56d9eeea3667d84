"""Rate limits, against a second local PDS started with PDS_RATE_LIMITS_ENABLED.

The PDS allows 30 createSession calls per 5 minutes per identifier: 30 logins
as a handle nobody has spend that budget once for the whole module (~6 s). Waiting out the real 5-minute window is not possible in a
test, so waits go through ``migrator.pds.calls.sleep`` on the clock
``migrator.pds.limits.now``, which these tests replace with a recorder: the PDS, its headers and its 429s are all real.
"""

import secrets
from concurrent.futures import ThreadPoolExecutor
import time

import pytest
from atproto_client import Client, models
from atproto_client.exceptions import RequestErrorBase

from migrator import pds
from migrator.pds import calls, limits
from tests.plugins.pds import create_test_account

pytestmark = [pytest.mark.pds, pytest.mark.slow]
SESSION_LIMIT = 30


@pytest.fixture
def waits(monkeypatch):
    """The waits migrator.pds asks for, on a clock that they move forward."""
    recorded, clock = [], [time.time()]

    def sleep(seconds):
        recorded.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr(calls, "sleep", sleep)
    monkeypatch.setattr(limits, "now", lambda: clock[0])
    return recorded


@pytest.fixture(scope="module")
def spent_handle(rate_limited_pds) -> str:
    """A handle whose login budget for the next 5 minutes is spent."""
    handle = f"nobody{secrets.token_hex(4)}.test"

    def log_in(_):
        client = Client(base_url=rate_limited_pds.url)
        data = models.ComAtprotoServerCreateSession.Data(identifier=handle, password="wrong-password")
        try:
            client.com.atproto.server.create_session(data)
        except RequestErrorBase as failure:
            return failure.response.status_code

    with ThreadPoolExecutor(4) as pool:
        assert set(pool.map(log_in, range(SESSION_LIMIT))) == {401}
    return handle


def test_a_429_longer_than_the_longest_wait_fails_as_rate_limited(pds_with_rate_limits, spent_handle, settings, waits):
    settings.PDS_RATE_LIMIT_MAX_WAIT = 10
    with pytest.raises(pds.PdsError) as failure:
        pds.repo_for(handle=spent_handle, password="wrong-password")

    assert failure.value.rate_limited and failure.value.status == 429
    assert 10 < failure.value.retry_after <= 300
    assert waits == []  # not worth holding a worker for minutes


def test_a_429_is_waited_out_for_retry_after_then_retried(pds_with_rate_limits, spent_handle, settings, waits):
    settings.PDS_RATE_LIMIT_MAX_WAIT = 600
    settings.PDS_RETRY_ATTEMPTS = 3
    with pytest.raises(pds.PdsError) as failure:
        pds.repo_for(handle=spent_handle, password="wrong-password")

    assert failure.value.rate_limited
    rate_limit_waits = [wait for wait in waits if wait > 1]
    assert len(rate_limit_waits) == 2 and all(wait <= 300 for wait in rate_limit_waits)


def test_the_operator_bypass_key_lifts_a_spent_limit(pds_with_rate_limits, spent_handle, settings):
    settings.PDS_RATE_LIMIT_BYPASS_KEY = pds_with_rate_limits.rate_limit_bypass_key
    with pytest.raises(pds.PdsError) as failure:
        pds.repo_for(handle=spent_handle, password="wrong-password")
    assert failure.value.permanent and failure.value.status == 401


def test_calls_slow_down_when_the_remaining_budget_runs_low(pds_with_rate_limits, settings, waits):
    # Every route counts against 3,000 requests per 5 minutes per IP; call
    # anything under 5,000 "low" and pacing must start at once.
    settings.PDS_RATE_LIMIT_LOW_WATER = 5000


    user = create_test_account()
    repo = pds.repo_for(did=user.did, password=user.password)
    waits.clear()
    repo.records_list(collection="computer.aesthetic.painting")
    repo.records_list(collection="computer.aesthetic.painting")

    (requests,) = [budget for budget in pds.BUDGETS.all() if budget.family == "requests"]
    assert requests.name == "requests: 3,000 per 5 minutes per IP" and requests.remaining < 3000
    assert waits and 0 < waits[-1] < 1  # about 300 s spread over ~2,990 calls
