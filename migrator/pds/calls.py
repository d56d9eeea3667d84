"""How every PDS call is made: paced by the rate-limit budgets it draws
from (migrator.pds.limits), transient failures retried with capped
exponential backoff and jitter, 429s waited out when the wait is short."""

import logging
import random
import time
from dataclasses import dataclass
from typing import Callable, TypeVar

from atproto_core.exceptions import AtProtocolError
import pydantic
from django.conf import settings

from . import limits
from .errors import PdsError, classify, is_token_error
from .limits import Cost, Meter, RateLimited

log = logging.getLogger("migrator.pds")
T = TypeVar("T")

# The seam tests patch to observe waits without waiting (with limits.now).
sleep = time.sleep


@dataclass
class RetryPolicy:
    attempts: int
    base_delay: float
    max_delay: float
    rate_limit_max_wait: float
    low_water: int

    @classmethod
    def from_settings(cls) -> "RetryPolicy":
        return cls(
            attempts=settings.PDS_RETRY_ATTEMPTS,
            base_delay=settings.PDS_RETRY_BASE_DELAY,
            max_delay=settings.PDS_RETRY_MAX_DELAY,
            rate_limit_max_wait=settings.PDS_RATE_LIMIT_MAX_WAIT,
            low_water=settings.PDS_RATE_LIMIT_LOW_WATER,
        )

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max, base * 2**attempt)]."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


# Requests this process has sent to the PDS (retries included), and the
# commits they made to repositories (each a signed revision of one repo,
# whatever number of records it holds), for the benchmark and the run summaries.
REQUESTS = [0]
COMMITS = [0]
COMMIT_ROUTES = frozenset({
    "com.atproto.repo.applyWrites", "com.atproto.repo.createRecord", "com.atproto.repo.putRecord", "com.atproto.repo.deleteRecord",
})  # fmt: skip


def call(
    action: str,
    request: Callable[[], T],
    *,
    meter: Meter,
    cost: Cost,
    policy: RetryPolicy,
    renew_session: Callable[[], None] | None = None,
) -> T:
    """``request()``, paced by ``meter``'s budgets and retried as its failure
    allows. Raises PdsError: RateLimited, without sending anything, when a
    budget it needs is spent for longer than PDS_RATE_LIMIT_MAX_WAIT."""
    attempt, renewed = 0, False
    while True:
        _pace(action, meter, cost, policy)
        meter.spend(cost)
        REQUESTS[0] += 1
        try:
            response = request()
        except (AtProtocolError, PdsError, pydantic.ValidationError) as exc:  # anything else is a bug: let it through
            error = classify(exc, action)
        else:
            COMMITS[0] += cost.route in COMMIT_ROUTES
            return response
        attempt += 1
        if renew_session and not renewed and is_token_error(error):
            renewed = True
            renew_session()
            continue
        delay = _retry_delay(error, attempt, meter, cost, policy)
        if isinstance(delay, PdsError):
            raise delay
        log.warning("%s; retry %d/%d in %.2fs", error.message, attempt, policy.attempts - 1, delay)
        sleep(delay)


def _retry_delay(error: PdsError, attempt: int, meter: Meter, cost: Cost, policy: RetryPolicy) -> float | PdsError:
    """Seconds to wait before the next try, or the error to raise."""
    if error.permanent or (attempt >= policy.attempts and not error.rate_limited):
        return error
    if not error.rate_limited:
        return policy.backoff(attempt)
    # The 429's headers taught the budget that refused: wait for it and for
    # retry-after (they can disagree by a second).
    wait, budget = meter.wait(cost)
    wait = max(wait, error.retry_after or 0.0) or policy.backoff(attempt)
    if wait > policy.rate_limit_max_wait or attempt >= policy.attempts:
        # The caller reschedules; holding a worker that long helps no one.
        return RateLimited(error.message, budget=budget, not_before=limits.now() + wait, status=error.status)
    return wait


def _pace(action: str, meter: Meter, cost: Cost, policy: RetryPolicy) -> None:
    wait, budget = meter.wait(cost, low_water=policy.low_water, max_spread=policy.rate_limit_max_wait)
    if wait <= 0:
        return
    if wait > policy.rate_limit_max_wait:
        raise RateLimited(f"{action}: {budget.name} spent until it resets", budget=budget, not_before=limits.now() + wait)
    log.info("%s: waiting %.2fs for %s (%d left)", action, wait, budget.name, budget.remaining)
    sleep(wait)
