"""What GET /health answers an uptime monitor: whether the console's
database, MongoDB, the PDS and the job cluster answer, and whether live
sync ran recently.

Each check gives "ok" or a short reason made of fixed words, numbers and
exception type names, never an exception's text (a driver's message can
quote a URI with its password). MongoDB, the PDS and the cluster are asked
at once, on threads, each within settings.HEALTH_TIMEOUT: a server that
hangs makes its check fail, never the answer late.
"""

import datetime as dt
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass

import pymongo
from django.conf import settings
from django.db import connection, connections
from django.utils import timezone

from migrator import pds, source
from migrator.kinds import PAINTING
from migrator.models import SyncCursor
from migrator.selectors import duration_text
from migrator.services.lifecycle import known_sample
from migrator.services.sync import CURSOR

OK = "ok"
# Past the services' own timeouts, a check still running is given up on.
GRACE_SECONDS = 1.0


@dataclass(frozen=True)
class Health:
    checks: dict[str, str]  # name -> "ok" or what is wrong
    failing: list[str]

    @property
    def ok(self) -> bool:
        return not self.failing

    def as_json(self) -> dict:
        answer = {"status": "ok" if self.ok else "failing", "checks": self.checks}
        if self.failing:
            answer["failing"] = self.failing
        return answer


def health_check() -> Health:
    """Every check, at most about HEALTH_TIMEOUT seconds in all."""
    timeout = settings.HEALTH_TIMEOUT
    known = _known_sample()
    remote: dict[str, Callable[[], str]] = {
        "mongodb": lambda: _mongodb(timeout, known),
        "pds": lambda: _pds(timeout),
        "cluster": _cluster,
    }
    pool = ThreadPoolExecutor(max_workers=len(remote), thread_name_prefix="health")
    futures = {name: pool.submit(_on_thread, check) for name, check in remote.items()}
    # The console's database and the sync cursor are read on this thread:
    # it is the connection (and, in tests, the transaction) the request uses.
    checks = {"database": _database()}
    checks["sync"] = _sync() if checks["database"] == OK else "not known (the database did not answer)"
    wait(futures.values(), timeout=timeout + GRACE_SECONDS)
    for name, future in futures.items():
        checks[name] = future.result() if future.done() else f"no answer within {timeout:g} s"
    pool.shutdown(wait=False, cancel_futures=True)
    ordered = {name: checks[name] for name in ("database", "mongodb", "pds", "cluster", "sync")}
    failing = [name for name, result in ordered.items() if result != OK and not (name == "cluster" and not settings.HEALTH_REQUIRE_CLUSTER)]
    return Health(checks=ordered, failing=failing)


def _on_thread(check: Callable[[], str]) -> str:
    try:
        return check()
    except Exception as error:  # noqa: BLE001 - a check that breaks is a failing check, not a 500
        return f"failed ({type(error).__name__})"
    finally:
        connections.close_all()  # whatever this thread opened


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:  # noqa: BLE001 - any failure is the answer
        return f"did not answer ({type(error).__name__})"
    return OK


def _known_sample() -> list[str]:
    """Some paintings the state table knows, read on the request's thread
    (its connection): MongoDB must have one of them to be the right database."""
    try:
        return known_sample(kind=PAINTING)
    except Exception:  # noqa: BLE001 - the database check says what is wrong with it
        return []


def _mongodb(timeout: float, known: list[str]) -> str:
    try:
        with pymongo.timeout(timeout):
            source.server_ping(timeout=timeout)
            source.database_check(known_refs=known, kind=PAINTING)
    except source.WrongDatabase:
        return "answers, but is not the migration's database (no paintings collection, or none of the known paintings): check MONGODB_DB"
    except Exception as error:  # noqa: BLE001 - PyMongoError and whatever a broken URI raises
        return f"did not answer ({type(error).__name__})"
    return OK


def _pds(timeout: float) -> str:
    try:
        pds.server_ping(timeout=timeout)
    except pds.PdsError as error:
        if error.rate_limited:
            return OK  # it answers; the budget this machine spent resets by itself
        return f"answered {error.status}" if error.status else "did not answer"
    return OK


def _cluster() -> str:
    from django_q.brokers import get_broker
    from django_q.status import Stat

    try:
        stats = Stat.get_all(get_broker())
    except Exception as error:  # noqa: BLE001 - the cache or broker is down
        return f"its state could not be read ({type(error).__name__})"
    if not stats:
        return "no cluster is running"
    if not sum(len(stat.workers) for stat in stats):
        return "no worker is alive"
    return OK


def _sync() -> str:
    synced_at = SyncCursor.objects.filter(name=CURSOR).values_list("synced_at", flat=True).first()
    if synced_at is None:
        return "has never run"
    age = timezone.now() - synced_at
    limit = dt.timedelta(minutes=settings.HEALTH_SYNC_MAX_AGE_MINUTES)
    if age > limit:
        return f"last ran {duration_text(age)} ago (more than {settings.HEALTH_SYNC_MAX_AGE_MINUTES} min)"
    return OK
