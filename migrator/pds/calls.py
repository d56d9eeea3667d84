"""How every PDS call is made: pacing by the rate-limit headers, retries of
transient failures with capped exponential backoff and jitter, waits on 429."""

import logging
import random
import time
from dataclasses import dataclass
from typing import Callable, TypeVar

from atproto_core.exceptions import AtProtocolError
import pydantic
from django.conf import settings

from .errors import PdsError, classify, is_token_error

log = logging.getLogger("migrator.pds")
T = TypeVar("T")

# The seams tests patch to observe waits without waiting.
sleep = time.sleep
now = time.time


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


class Pacing:
    """The rate-limit budget the last response reported, and the wait it implies."""

    def __init__(self) -> None:
        self.remaining: int | None = None
        self.reset_at: float | None = None

    def observe(self, headers) -> None:
        remaining, reset = headers.get("ratelimit-remaining"), headers.get("ratelimit-reset")
        if remaining is None or reset is None:
            return
        try:
            self.remaining, self.reset_at = int(remaining), float(reset)
        except ValueError:
            return

    def wait_before_call(self, low_water: int) -> float:
        """Seconds to wait so the remaining budget lasts until the window resets."""
        if self.remaining is None or self.reset_at is None or self.remaining > low_water:
            return 0.0
        left = self.reset_at - now()
        if left <= 0:
            return 0.0
        return left / max(self.remaining, 1) if self.remaining else left


# Requests this process has sent to the PDS (retries included), for the
# benchmark and the run summaries.
REQUESTS = [0]


def call(
    action: str,
    request: Callable[[], T],
    *,
    pacing: Pacing,
    policy: RetryPolicy,
    renew_session: Callable[[], None] | None = None,
) -> T:
    """``request()``, retried as its failure allows. Raises PdsError."""
    attempt, renewed = 0, False
    while True:
        _pace(action, pacing, policy)
        REQUESTS[0] += 1
        try:
            return request()
        except (AtProtocolError, PdsError, pydantic.ValidationError) as exc:  # anything else is a bug: let it through
            error = classify(exc, action)
        attempt += 1
        if renew_session and not renewed and is_token_error(error):
            renewed = True
            renew_session()
            continue
        delay = _retry_delay(error, attempt, pacing, policy)
        if delay is None:
            raise error
        log.warning("%s; retry %d/%d in %.2fs", error.message, attempt, policy.attempts - 1, delay)
        sleep(delay)


def _retry_delay(error: PdsError, attempt: int, pacing: Pacing, policy: RetryPolicy) -> float | None:
    if attempt >= policy.attempts or error.permanent:
        return None
    if not error.rate_limited:
        return policy.backoff(attempt)
    # retry-after and ratelimit-reset can disagree by seconds: wait for both.
    waits = [error.retry_after, pacing.reset_at and max(pacing.reset_at - now(), 0.0)]
    waits = [wait for wait in waits if wait is not None]
    wait = max(waits) if waits else policy.backoff(attempt)
    if wait > policy.rate_limit_max_wait:
        return None  # the caller reschedules; holding a worker that long helps no one
    return wait


def _pace(action: str, pacing: Pacing, policy: RetryPolicy) -> None:
    wait = pacing.wait_before_call(policy.low_water)
    if wait <= 0:
        return
    if wait > policy.rate_limit_max_wait:
        raise PdsError(f"{action}: rate limit budget spent until the window resets", "rate_limited", status=429, retry_after=wait)
    log.info("%s: %s calls left in this rate-limit window; waiting %.2fs", action, pacing.remaining, wait)
    sleep(wait)
