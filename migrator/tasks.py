"""django-q2 jobs: thin wrappers that take ids and call one service."""

import logging

from pymongo.errors import PyMongoError

from migrator.services import engine, sync, watch
from migrator.source import WrongDatabase

log = logging.getLogger(__name__)


def batch_migrate(ids: list[int], run: str = "") -> dict:
    """Migrate one batch (see engine.batches_for) for the run ``run``.
    Returns the counts."""
    return engine.transfers_migrate(ids, actor=f"worker:{engine.worker_name()}", run=run).as_dict()


def live_sync() -> dict:
    """The live_sync schedule: new and changed documents reach ATProto, then
    staff are told if work is stuck. MongoDB out of reach is a passing
    state: said in one line, and the next run (a minute later) tries again."""
    try:
        result = sync.live_sync(actor=sync.ACTOR).as_dict()
    except WrongDatabase as error:
        log.error("Live sync refused: %s", error)
        sync.wrong_database_alert(error)
        result = {"refused": str(error)}
    except PyMongoError as error:
        log.warning("Live sync skipped: MongoDB is out of reach (%s); the next run tries again.", type(error).__name__)
        result = {"skipped": f"MongoDB out of reach ({type(error).__name__})"}
    watch.stuck_watch()
    return result


def verification() -> dict:
    """The verification schedule: the full comparison, kept as a
    Verification, staff told of drift. Returns its figures."""
    verification = watch.verification_run(actor=watch.VERIFY_ACTOR)
    return {"differences": verification.differences, "counts": verification.counts, "error": verification.error}


# The names these jobs had before the state table's rename (migration 0010):
# jobs queued under them by the code before it still run.
painting_batch_migrate = batch_migrate
paintings_sync = live_sync
paintings_verify = verification
