"""One batch: claim, prepare, blobs, write, then settle (the write-back and
the rows migrated, once for the batch); a failure of one document ends
only that document.

What is particular to a kind of record (its NSID, record, key, blob and
write-back) comes from each row's kind (migrator.kinds): a batch may hold
several kinds, and each account's rows of one kind go through together.
Each step is a module of this package, called here in order."""

import ctypes
import functools
import logging
import os
import socket
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.conf import settings
from django.db.models import F
from django.utils import timezone
from pymongo.errors import PyMongoError

from migrator import pds, source
from migrator.kinds import RecordKind, kind_for
from migrator.models import ErrorKind, Transfer, SkipReason, Status
from migrator.pds import calls as pds_calls
from migrator.services.lifecycle import mongodb_verify, removal_hold
from migrator.services.state import transfers_transition

from .accounts import account_outcome, repo_for
from .blobs import blobs_make, blobs_start
from .claims import Lease, claimant_new
from .finish import finish, pds_outcome
from .prepare import kept_unpublished, look_up_earlier_attempts, prepare, tried_before, unpublished_because, wait_for_uploads
from .removals import gone_settle, record_remove
from .work import BatchResult, Outcome, Work, Written, written_for
from .write import chunk_write
from .writeback import settle

log = logging.getLogger("migrator.services.engine")


RUNNABLE = (Status.PENDING, Status.QUEUED, Status.FAILED, Status.WAITING)


# A batch checks that MONGODB_DB is the migration's database at most this
# often per process (every command and the schedule check it each time).
GUARD_SECONDS = 300


def memory_release() -> None:
    """Give freed memory back to the operating system after a batch.

    Decoded images are large and threads each get a malloc arena, so
    glibc would otherwise keep a worker's peak for good and its RSS would
    creep up run after run. A no-op where there is no glibc.
    """
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


@functools.cache
def _libc():
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def priority_lower() -> None:
    """Run this process's work from now on at WORKER_NICENESS (never at a
    higher priority than it has): a batch is background work, and on a
    machine it shares, its thumbnails should wait for a core rather than
    the admin's requests, or a PDS whose one thread every upload waits on.
    Threads inherit it from the thread that starts them, so call it in a
    worker's main thread before its first batch."""
    wanted = settings.WORKER_NICENESS
    if wanted > os.getpriority(os.PRIO_PROCESS, 0):
        os.setpriority(os.PRIO_PROCESS, 0, wanted)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def transfers_migrate(ids: Iterable[int], *, actor: str, run: str = "") -> BatchResult:
    """Migrate the rows ``ids``, of any kinds (runnable ones; others are
    left alone). Never raises for a document's failure: each one ends
    migrated, skipped or failed, with its events, or back to pending when
    MongoDB changed while it ran. The batch's claim is renewed while it
    works, and only rows it still holds are finished. ``run`` names the run
    the records are written for (default: ``actor``).

    Rows of a kind whose MongoDB collection is not the migration's (see
    lifecycle.mongodb_verify) are not claimed and not changed."""
    result = BatchResult()
    ids = list(ids)
    for name in Transfer.objects.filter(id__in=ids).values_list("kind", flat=True).distinct():
        try:
            mongodb_verify(cache_seconds=GUARD_SECONDS, kind=kind_for(name))
        except source.WrongDatabase as error:
            log.error("Batch not run for its %s: %s", name, error, extra={"kind": name})
            ids = list(Transfer.objects.filter(id__in=ids).exclude(kind=name).values_list("id", flat=True))
        except PyMongoError:
            pass  # out of reach: the batch's first read fails its rows, retryable
    if not ids:
        return result
    token = written_for.set(run or actor)
    try:
        return _transfers_migrate(ids, actor=actor, result=result)
    finally:
        written_for.reset(token)


def _transfers_migrate(ids: list[int], *, actor: str, result: BatchResult) -> BatchResult:
    requests_before, commits_before, logins_before = pds_calls.REQUESTS[0], pds_calls.COMMITS[0], sum(pds.LOGINS.values())
    holder = claimant_new()
    ids = _not_held(ids)
    claimed = transfers_transition(
        Transfer.objects.filter(id__in=ids),
        from_statuses=RUNNABLE,
        to=Status.RUNNING,
        actor=actor,
        message=f"Claimed by {holder}.",
        claimed_by=holder,
        claimed_at=timezone.now(),
        attempts=F("attempts") + 1,
    )
    accounts = defaultdict(lambda: defaultdict(list))  # owner -> kind -> rows, oldest first
    for row in Transfer.objects.filter(id__in=claimed).order_by("when", "id"):
        accounts[row.owner][row.kind].append(row)
    with Lease(holder):
        try:  # one read of users for the batch's accounts, not one each
            known = source.credentials_for(owner for owner in accounts if owner)
        except Exception as error:  # noqa: BLE001 - MongoDB unreachable: fail the batch, retryable
            log.exception("Could not read the credentials of a batch's accounts")
            for kinds in accounts.values():
                for rows in kinds.values():
                    _fail_unfinished(rows, error, actor=actor, result=result)
            known, accounts = {}, {}
        _accounts_migrate(accounts, known, actor=actor, result=result)
    result.pds_requests = pds_calls.REQUESTS[0] - requests_before
    result.commits = pds_calls.COMMITS[0] - commits_before
    result.logins = sum(pds.LOGINS.values()) - logins_before
    memory_release()
    return result


def _not_held(ids: list[int]) -> list[int]:
    """While removals of a kind are held (the tripwire), the documents of
    that kind MongoDB lacks are left as they are, not migrated and then
    found gone: a bad restore must not skip them either. They run once the
    hold is resolved."""
    if removal_hold() is None:  # no hold of any kind: nothing to look up
        return ids
    kept = []
    by_kind = defaultdict(dict)
    for row_id, kind, ref in Transfer.objects.filter(id__in=ids).values_list("id", "kind", "ref"):
        by_kind[kind][row_id] = ref
    for name, refs in by_kind.items():
        kind = kind_for(name)
        if removal_hold(kind=kind) is None:
            kept += refs
            continue
        try:
            present = source.refs_present(refs.values(), kind=kind)
        except PyMongoError:
            kept += refs  # out of reach: the batch's first read fails its rows, retryable
            continue
        kept += [row_id for row_id, ref in refs.items() if ref in present]
    kept = set(kept)
    return [row_id for row_id in ids if row_id in kept]


def _fail_unfinished(rows: list[Transfer], error: Exception, *, actor: str, result: BatchResult) -> None:
    """After an unexpected error, fail the batch's documents still running
    (retryable), so none waits for a lease to run out."""
    # Only the type: an unexpected exception's text may carry what it was
    # given (a password, a token); the worker's log has the traceback.
    message = f"Unexpected error: {type(error).__name__} (the traceback is in the worker's log)."
    holder = rows[0].claimed_by if rows else ""
    for row in Transfer.objects.filter(pk__in=[row.pk for row in rows], status=Status.RUNNING, claimed_by=holder):
        finish(row, Outcome(message, kind=ErrorKind.TRANSIENT), actor=actor, result=result)


def _accounts_migrate(
    accounts: dict[str, dict[str, list[Transfer]]], known: dict[str, "source.Credentials"], *, actor: str, result: BatchResult
) -> None:
    """The batch's accounts in turn, each one's blobs started before the
    account ahead of it is written: the blob threads fetch images and make
    thumbnails while the worker waits on the PDS for that account's uploads
    and commit, instead of in turn with them. No more than two accounts are
    open at once, and only when the session cache keeps two; an account
    with no blob to make is opened after the one ahead is done, as before.
    What the accounts wrote is settled once, at the end, whatever happened
    on the way."""
    written: list[Written] = []
    try:
        ahead = None
        for owner, kinds in accounts.items():
            overlap = settings.PDS_OPEN_SESSIONS > 1 and any(kind_for(name).blob_make for name in kinds)
            if ahead is not None and not overlap:
                _account_finish(ahead, written, actor=actor, result=result)
                ahead = None
            started = _account_start(owner, kinds, credentials=known.get(owner), actor=actor, result=result)
            if ahead is not None:
                _account_finish(ahead, written, actor=actor, result=result)
            ahead = started
        if ahead is not None:
            _account_finish(ahead, written, actor=actor, result=result)
    finally:
        _settle(written, actor=actor, result=result)


def _settle(written: list[Written], *, actor: str, result: BatchResult) -> None:
    try:
        settle(written, actor=actor, result=result)
    except Exception as error:  # noqa: BLE001 - a bug must not strand documents as running
        log.exception("Unexpected error settling a batch's %d written records", len(written))
        _fail_unfinished([one.work.row for one in written], error, actor=actor, result=result)


@dataclass
class KindStarted:
    """One kind of an account's rows, prepared, its blobs being made."""

    kind: RecordKind
    rows: list[Transfer]
    repo: pds.Repo
    works: list[Work]


@dataclass
class AccountStarted:
    owner: str
    kinds: list[KindStarted]


def _account_start(owner: str, kinds: dict[str, list[Transfer]], *, credentials: "source.Credentials | None", actor: str, result: BatchResult) -> AccountStarted:
    """Everything before an account's records are written, kind by kind:
    the removals, the account opened, each record made, earlier attempts
    looked up, and its blobs started."""
    started = AccountStarted(owner, [])
    for name, rows in kinds.items():
        kind = kind_for(name)
        try:
            prepared = _account_prepare(owner, rows, credentials=credentials, actor=actor, result=result, kind=kind)
        except Exception as error:  # noqa: BLE001 - a bug must not strand documents as running
            _unexpected(owner, rows, error, actor=actor, result=result)
            continue
        if prepared is not None:
            repo, works = prepared
            if kind.blob_make:
                blobs_start(works)
            started.kinds.append(KindStarted(kind, rows, repo, works))
    return started


def _account_finish(started: AccountStarted, written: list[Written], *, actor: str, result: BatchResult) -> None:
    """An account's records written, and added to ``written``: each kind
    with a blob on its own once its blobs are made, and the records of
    every kind without one together (a mood, three programs and a piece:
    one commit)."""
    repo, together = None, []
    for one in started.kinds:
        repo = one.repo
        if not one.kind.blob_make:
            together += one.works
            continue
        try:
            works = blobs_make(one.works, actor=actor, result=result)
            if works:
                _account_write(one.repo, works, written, actor=actor, result=result)
        except Exception as error:  # noqa: BLE001 - a bug must not strand documents as running
            _unexpected(started.owner, _unwritten(one.rows, written), error, actor=actor, result=result)
    if together:
        try:
            _account_write(repo, together, written, actor=actor, result=result)
        except Exception as error:  # noqa: BLE001 - a bug must not strand documents as running
            _unexpected(started.owner, _unwritten([work.row for work in together], written), error, actor=actor, result=result)


def _unwritten(rows: list[Transfer], written: list[Written]) -> list[Transfer]:
    """The rows whose record was not written: those to fail after an
    unexpected error (the written ones are settled with the batch)."""
    done = {one.work.row.pk for one in written}
    return [row for row in rows if row.pk not in done]


def _unexpected(owner: str, rows: list[Transfer], error: Exception, *, actor: str, result: BatchResult) -> None:
    kinds = sorted({row.kind for row in rows})
    batch = {"kind": ",".join(kinds), "refs": [row.ref for row in rows]}  # each row's own failure is a line of its own too
    log.exception("Unexpected error migrating a batch of %s's %s", owner or "anonymous", " and ".join(kind_for(name).plural for name in kinds), extra=batch)
    _fail_unfinished(rows, error, actor=actor, result=result)


def _account_prepare(
    owner: str, rows: list[Transfer], *, credentials: "source.Credentials | None", actor: str, result: BatchResult, kind: RecordKind
) -> tuple[pds.Repo, list[Work]] | None:
    """Everything before one account's records of ``kind`` are written and
    their blobs made: the removals, the account opened, each record made,
    earlier attempts looked up. Returns the repository and what is left to
    write, or None when nothing is (each row finished already)."""
    rows = gone_settle(owner, rows, credentials=credentials, actor=actor, result=result, kind=kind)
    rows = wait_for_uploads(rows, actor=actor, result=result, kind=kind)
    if not rows:
        return None
    try:
        repo = repo_for(owner, rows, credentials=credentials)
    except Outcome as outcome:
        outcome = account_outcome(rows, outcome)
        for row in rows:
            if outcome.skip_reason == SkipReason.ACCOUNT_UNUSABLE and kept_unpublished(row, kind=kind) and tried_before(row):
                # A record to remove stays to remove: retried until the account can be written to.
                finish(row, Outcome(outcome.message, kind=ErrorKind.TRANSIENT), actor=actor, result=result)
            else:
                finish(row, outcome, actor=actor, result=result)
        return None
    works = []
    for row in rows:
        if kept_unpublished(row, kind=kind) and tried_before(row):
            reason, why = unpublished_because(row, kind=kind)
            record_remove(repo, row, reason=reason, why=why, actor=actor, result=result, kind=kind)
            continue
        try:
            works.append(prepare(row, kind=kind))
        except Outcome as outcome:
            finish(row, outcome, actor=actor, result=result)
    works = look_up_earlier_attempts(repo, works, actor=actor, result=result)
    blocked = repo.upload_blocked() if kind.blob_make and any(work.blob is None for work in works) else None
    if blocked:  # known before any thumbnail is made or request spent
        for work in works:
            finish(work.row, pds_outcome(f"Uploading the {kind.blob_field}", blocked), actor=actor, result=result)
        return None
    return (repo, works) if works else None


def _account_write(repo: pds.Repo, works: list[Work], written: list[Written], *, actor: str, result: BatchResult) -> None:
    """One account's records, of one kind or several, in as few applyWrites
    as the PDS takes, each chunk added to ``written`` as it is written."""
    for chunk in _chunks(works, pds.MAX_WRITES_PER_CALL):
        written.extend(chunk_write(repo, chunk, actor=actor, result=result))


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
