"""The PDS's rate limits as budgets, one per limit and scope.

The reference PDS (0.5.x; its ``rate-limits.js`` and each route's
``rateLimit``) counts, when rate limits are on:

- every request: 3,000 per 5 minutes per IP (the global limit);
- ``uploadBlob``: 1,000 per day per IP;
- repository writes (``applyWrites``, ``createRecord``, ``putRecord``,
  ``deleteRecord``): 5,000 points per hour and 35,000 per day per account,
  a create costing 3 points, an update 2, a delete 1;
- ``createSession``: 30 per 5 minutes and 300 per day per handle.

A response carries the ``ratelimit-*`` headers of the tightest of the limits
its route counts against (the one with the fewest points left), so each
response teaches one budget: which one, its ``ratelimit-policy`` and route
say. A budget learned is also counted down here as calls are sent, so the
ones a response does not report stay current in between.

Before a call ``Budgets.wait`` says how long it must wait for every budget
it draws from; a wait longer than the caller will hold a worker becomes a
``RateLimited`` error that names the limit and when it resets, and no
request is spent. An upload also needs the account's write budget to take
the record it is for: a blob whose record cannot be written is a wasted
upload of the scarcest budget there is.
"""

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from .errors import RATE_LIMITED, PdsError

GLOBAL_POLICY = "3000;w=300"  # what the reference PDS reports for its global limit
WRITE_POINTS = {"create": 3, "update": 2, "delete": 1}

UPLOAD_ROUTE = "com.atproto.repo.uploadBlob"
WRITE_ROUTES = frozenset(
    {"com.atproto.repo.applyWrites", "com.atproto.repo.createRecord", "com.atproto.repo.putRecord", "com.atproto.repo.deleteRecord"}
)
LOGIN_ROUTE = "com.atproto.server.createSession"
# Routes with limits of their own: (family, scope). Scope "ip" is shared by
# every account this machine writes for; "account" is one DID's; "login"
# one identifier's.
ROUTE_FAMILIES = {
    UPLOAD_ROUTE: ("uploadBlob", "ip"),
    **{route: ("repository writes", "account") for route in WRITE_ROUTES},
    LOGIN_ROUTE: ("logins", "login"),
    "com.atproto.server.createAccount": ("account creations", "ip"),
}
REMEDY = (
    "To lift it: ask the PDS operator for its PDS_RATE_LIMIT_BYPASS_KEY and set it here, "
    "or have this machine's IP added to PDS_RATE_LIMIT_BYPASS_IPS on the PDS, "
    "or run clusters on more machines (each IP has its own per-IP budget)."
)

# The seam tests move to observe waits without waiting.
now = time.time


def window_text(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return unit if count == 1 else f"{count} {unit}s"
    return f"{seconds} seconds"


@dataclass
class Budget:
    """One rate limit in one scope, as the PDS last reported it, counted down since."""

    family: str  # "requests", "uploadBlob", "repository writes", "logins", or a route
    scope: str  # "ip", "account" or "login"
    who: str  # "" for this machine's IP, else the DID or identifier
    limit: int
    window: int  # seconds
    remaining: int
    reset_at: float  # epoch seconds

    @property
    def name(self) -> str:
        """What the limit is, for a person: "uploadBlob: 1,000 per day per IP"."""
        per = {"ip": "per IP", "account": "per account", "login": "per handle"}[self.scope]
        unit = " points" if self.family == "repository writes" else ""
        return f"{self.family}: {self.limit:,}{unit} per {window_text(self.window)} {per}"

    def wait(self, points: int, at: float) -> float:
        """Seconds until ``points`` can be spent (0: now)."""
        if at >= self.reset_at or self.remaining >= points:
            return 0.0
        return self.reset_at - at

    def spread(self, points: int, at: float, low_water: int) -> float:
        """Seconds to wait so the last ``low_water`` points last the window."""
        left = self.reset_at - at
        if self.remaining > low_water or left <= 0 or self.remaining < points:
            return 0.0
        return left / max(self.remaining // points, 1)


class RateLimited(PdsError):
    """A call that cannot succeed before ``not_before`` (epoch seconds),
    because ``budget`` is spent. Raised before sending anything when the
    budget is known to be spent, or after a 429 that asks for a longer wait
    than a worker is held."""

    def __init__(self, message: str, *, budget: Budget | None, not_before: float, status: int | None = None):
        super().__init__(message, RATE_LIMITED, status=status, error="RateLimitExceeded", retry_after=max(not_before - now(), 0.0))
        self.budget = budget
        self.not_before = not_before

    @property
    def limit_name(self) -> str:
        return self.budget.name if self.budget else "the PDS's rate limit"

    @property
    def resumes_at(self) -> datetime:
        return datetime.fromtimestamp(self.not_before, UTC)


@dataclass(frozen=True)
class Cost:
    """What one call draws: ``points`` from its route's budgets, and
    ``then_writes`` points the account must still be able to write after it
    (an upload's record)."""

    route: str
    points: int = 1
    then_writes: int = 0


class Budgets:
    """Every budget this process has learned, shared by all its clients."""

    def __init__(self) -> None:
        self._budgets: dict[tuple, Budget] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._budgets.clear()

    def all(self) -> list[Budget]:
        with self._lock:
            return list(self._budgets.values())

    def observe(self, *, route: str, headers, did: str = "", identifier: str = "") -> Budget | None:
        """Learn the budget a response reports. Returns it (None without headers)."""
        try:
            limit, remaining = int(headers["ratelimit-limit"]), int(headers["ratelimit-remaining"])
            reset_at = float(headers["ratelimit-reset"])
            policy = headers.get("ratelimit-policy") or f"{limit};w=0"
            window = int(policy.split("w=", 1)[1].split(";", 1)[0])
        except (KeyError, ValueError, IndexError, TypeError):
            return None
        family, scope, who = _identify(route, policy, did=did, identifier=identifier)
        with self._lock:
            key = (family, policy, who)
            budget = self._budgets.get(key)
            if budget is None:
                budget = self._budgets[key] = Budget(family, scope, who, limit, window, remaining, reset_at)
            else:
                budget.limit, budget.window, budget.remaining, budget.reset_at = limit, window, remaining, reset_at
        return budget

    def wait(
        self, cost: Cost, *, did: str = "", identifier: str = "", low_water: int = 0, max_spread: float = 0.0
    ) -> tuple[float, Budget | None]:
        """How long ``cost`` must wait, and the budget that makes it wait.
        Below ``low_water`` points a short window's last calls are spread
        over what is left of it (by at most ``max_spread`` seconds each: a
        day's window is spent as fast as it allows, then waited out)."""
        at = now()
        longest, binding = 0.0, None
        for budget, points in self._drawn(cost, did=did, identifier=identifier):
            spread = budget.spread(points, at, low_water)
            wait = budget.wait(points, at) or (spread if spread <= max_spread else 0.0)
            if wait > longest:
                longest, binding = wait, budget
        return longest, binding

    def spend(self, cost: Cost, *, did: str = "", identifier: str = "") -> None:
        """Count a call about to be sent against the budgets it draws from."""
        at = now()
        with self._lock:
            for budget, points in self._drawn(cost, did=did, identifier=identifier, spending=True):
                if at < budget.reset_at:
                    budget.remaining = max(budget.remaining - points, 0)

    def capacity(self, family: str, who: str, points_each: int) -> int | None:
        """How many calls of ``points_each`` the budgets of ``family`` for
        ``who`` can take now (None: no limit known)."""
        at = now()
        known = [b for b in self.all() if b.family == family and b.who == who and at < b.reset_at]
        if not known:
            return None
        return min(budget.remaining // points_each for budget in known)

    def _drawn(self, cost: Cost, *, did: str, identifier: str, spending: bool = False) -> list[tuple[Budget, int]]:
        family, _scope, who = _identify(cost.route, "", did=did, identifier=identifier)
        drawn = []
        for budget in list(self._budgets.values()):
            if budget.family == "requests":
                drawn.append((budget, 1))
            elif budget.family == family and budget.who == who:
                drawn.append((budget, cost.points))
            elif cost.then_writes and not spending and budget.family == "repository writes" and budget.who == did:
                drawn.append((budget, cost.then_writes))
        return drawn


def _identify(route: str, policy: str, *, did: str, identifier: str) -> tuple[str, str, str]:
    """(family, scope, who) of the limit ``policy`` reported on ``route``."""
    if policy == GLOBAL_POLICY or (policy and route not in ROUTE_FAMILIES):
        return "requests", "ip", ""
    family, scope = ROUTE_FAMILIES.get(route, (route, "account"))
    who = {"ip": "", "account": did, "login": identifier}[scope]
    return family, scope, who


BUDGETS = Budgets()


class Meter:
    """One client's view of the shared budgets: who it calls as, and the
    hook that learns from each of its responses."""

    def __init__(self, *, did: str = "", identifier: str = "", budgets: Budgets = BUDGETS) -> None:
        self.did, self.identifier, self.budgets = did, identifier, budgets

    def observe(self, path: str, headers) -> None:
        route = path.rsplit("/", 1)[-1] if path.startswith("/xrpc/") else path
        self.budgets.observe(route=route, headers=headers, did=self.did, identifier=self.identifier)

    def wait(self, cost: Cost, *, low_water: int = 0, max_spread: float = 0.0) -> tuple[float, Budget | None]:
        return self.budgets.wait(cost, did=self.did, identifier=self.identifier, low_water=low_water, max_spread=max_spread)

    def spend(self, cost: Cost) -> None:
        self.budgets.spend(cost, did=self.did, identifier=self.identifier)

    def write_capacity(self, points_each: int) -> int | None:
        """How many writes of ``points_each`` this account's write budgets take now."""
        return self.budgets.capacity("repository writes", self.did, points_each)
