"""One batch: claim, blobs (a painting's thumbnail, a tape's video),
applyWrites, MongoDB write-back, migrated; a failure of one document ends
only that document.

What is particular to a kind of record (its NSID, record, key, blob and
write-back) comes from each row's kind (migrator.kinds): a batch may hold
several kinds, and each account's rows of one kind go through together."""

import contextvars
import ctypes
import functools
import logging
import os
import socket
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import F
from django.utils import timezone
from pymongo.errors import PyMongoError

from migrator import pds, source
from migrator.images import ImageError
from migrator.kinds import PAINTING, RecordKind, kind_for
from migrator.lexicon import InvalidRecord, record_validate
from migrator.models import Account, ErrorKind, MigrationEvent, PaintingMigration, RateLimitWindow, SkipReason, Status
from migrator.pds import calls as pds_calls
from migrator.failures import error_signature
from migrator.services.lifecycle import UNKNOWN_RUN, mongodb_verify, removal_hold
from migrator.services.state import Change, painting_note, painting_transition, paintings_transition, paintings_transition_each
from migrator.thumbnails import Thumbnail, ThumbnailError

from .claims import Lease, claimant_new

log = logging.getLogger("migrator.services.engine")

RUNNABLE = (Status.PENDING, Status.QUEUED, Status.FAILED, Status.WAITING)
# A batch checks that MONGODB_DB is the migration's database at most this
# often per process (every command and the schedule check it each time).
GUARD_SECONDS = 300
# What a row's record is checked against when the batch finishes: an edit
# in MongoDB, a deletion found or a take-down that landed meanwhile sends
# the painting back to pending instead of migrated.
UNCHANGED_WHILE_RUNNING = ("source_fingerprint", "gone_since", "unpublished_at")
# The run the batch writes for (``written_by``, what "undo a run" selects).
_run: contextvars.ContextVar[str] = contextvars.ContextVar("run", default="")


def memory_release() -> None:
    """Give freed memory back to the operating system after a batch.

    Decoded paintings are large and threads each get a malloc arena, so
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


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class BatchResult:
    migrated: int = 0
    adopted: int = 0  # records found already written by an earlier attempt
    skipped: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)
    changed: int = 0  # MongoDB changed while they ran: back to pending, to be rewritten
    lost: int = 0  # claims that ran out and went to another worker before the end
    waiting: Counter = field(default_factory=Counter)  # rate limit -> paintings that wait for its reset
    resume_at: dict = field(default_factory=dict)  # rate limit -> when it resets (ISO 8601)
    pds_requests: int = 0
    logins: int = 0

    def add(self, other: "BatchResult") -> None:
        self.migrated += other.migrated
        self.adopted += other.adopted
        self.skipped.update(other.skipped)
        self.failed.update(other.failed)
        self.changed += other.changed
        self.lost += other.lost
        self.waiting.update(other.waiting)
        for limit, at in other.resume_at.items():
            self.resume_at[limit] = max(at, self.resume_at.get(limit, at))
        self.pds_requests += other.pds_requests
        self.logins += other.logins

    @classmethod
    def from_dict(cls, counts: dict) -> "BatchResult":
        return cls(**{**counts, **{name: Counter(counts[name]) for name in ("skipped", "failed", "waiting")}})

    @property
    def total(self) -> int:
        return self.migrated + sum(self.skipped.values()) + sum(self.failed.values()) + sum(self.waiting.values()) + self.changed + self.lost

    def as_dict(self) -> dict:
        return {
            "migrated": self.migrated, "adopted": self.adopted, "skipped": dict(self.skipped), "failed": dict(self.failed),
            "changed": self.changed, "lost": self.lost, "waiting": dict(self.waiting), "resume_at": dict(self.resume_at),
            "pds_requests": self.pds_requests, "logins": self.logins,
        }


@dataclass
class Work:
    """One claimed painting on its way through the batch."""

    row: PaintingMigration
    rkey: str
    stored: dict | None = None  # the record an earlier attempt left on the PDS
    thumbnail: Thumbnail | None = None
    has_recording: bool = False
    record: dict | None = None
    action: str = "create"
    # The thumbnail blob the stored record holds, when its image is the
    # same: a rewrite reuses it, with no image fetched and nothing uploaded.
    blob: dict | None = None
    kind: RecordKind = PAINTING


class Outcome(Exception):
    """Ends one painting's way through the batch: skipped, failed, or
    waiting for a rate limit (``waiting``: the RateLimited that says which
    limit and until when)."""

    def __init__(self, message: str, *, kind: str = "", skip_reason: str = "", waiting: "pds.RateLimited | None" = None):
        super().__init__(message)
        self.message, self.kind, self.skip_reason, self.waiting = message, kind, skip_reason, waiting


def paintings_migrate(ids: Iterable[int], *, actor: str, run: str = "") -> BatchResult:
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
    for name in PaintingMigration.objects.filter(id__in=ids).values_list("kind", flat=True).distinct():
        try:
            mongodb_verify(cache_seconds=GUARD_SECONDS, kind=kind_for(name))
        except source.WrongDatabase as error:
            log.error("Batch not run for its %s: %s", name, error, extra={"kind": name})
            ids = list(PaintingMigration.objects.filter(id__in=ids).exclude(kind=name).values_list("id", flat=True))
        except PyMongoError:
            pass  # out of reach: the batch's first read fails its rows, retryable
    if not ids:
        return result
    token = _run.set(run or actor)
    try:
        return _paintings_migrate(ids, actor=actor, result=result)
    finally:
        _run.reset(token)


def _paintings_migrate(ids: list[int], *, actor: str, result: BatchResult) -> BatchResult:
    requests_before, logins_before = pds_calls.REQUESTS[0], sum(pds.LOGINS.values())
    holder = claimant_new()
    ids = _not_held(ids)
    claimed = paintings_transition(
        PaintingMigration.objects.filter(id__in=ids),
        from_statuses=RUNNABLE,
        to=Status.RUNNING,
        actor=actor,
        message=f"Claimed by {holder}.",
        claimed_by=holder,
        claimed_at=timezone.now(),
        attempts=F("attempts") + 1,
    )
    groups = defaultdict(list)
    for row in PaintingMigration.objects.filter(id__in=claimed).order_by("when", "id"):
        groups[row.owner, row.kind].append(row)
    with Lease(holder):
        try:  # one read of users for the batch's accounts, not one each
            known = source.credentials_for(owner for owner, _ in groups if owner)
        except Exception as error:  # noqa: BLE001 - MongoDB unreachable: fail the batch, retryable
            log.exception("Could not read the credentials of a batch's accounts")
            for rows in groups.values():
                _fail_unfinished(rows, error, actor=actor, result=result)
            known, groups = {}, {}
        for (owner, kind), rows in groups.items():
            try:
                _account_migrate(owner, rows, credentials=known.get(owner), actor=actor, result=result, kind=kind_for(kind))
            except Exception as error:  # noqa: BLE001 - a bug must not strand paintings as running
                batch = {"kind": kind, "refs": [row.ref for row in rows]}  # each row's own failure is a line of its own too
                log.exception("Unexpected error migrating a batch of %s's %s", owner or "anonymous", kind_for(kind).plural, extra=batch)
                _fail_unfinished(rows, error, actor=actor, result=result)
    result.pds_requests = pds_calls.REQUESTS[0] - requests_before
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
    for row_id, kind, ref in PaintingMigration.objects.filter(id__in=ids).values_list("id", "kind", "ref"):
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


def _fail_unfinished(rows: list[PaintingMigration], error: Exception, *, actor: str, result: BatchResult) -> None:
    """After an unexpected error, fail the batch's paintings still running
    (retryable), so none waits for a lease to run out."""
    # Only the type: an unexpected exception's text may carry what it was
    # given (a password, a token); the worker's log has the traceback.
    message = f"Unexpected error: {type(error).__name__} (the traceback is in the worker's log)."
    holder = rows[0].claimed_by if rows else ""
    for row in PaintingMigration.objects.filter(pk__in=[row.pk for row in rows], status=Status.RUNNING, claimed_by=holder):
        _finish(row, Outcome(message, kind=ErrorKind.TRANSIENT), actor=actor, result=result)


def _account_migrate(
    owner: str, rows: list[PaintingMigration], *, credentials: "source.Credentials | None", actor: str, result: BatchResult, kind: RecordKind
) -> None:
    rows = _gone_settle(owner, rows, credentials=credentials, actor=actor, result=result, kind=kind)
    rows = _wait_for_uploads(rows, actor=actor, result=result, kind=kind)
    if not rows:
        return
    try:
        repo = _repo_for(owner, rows, credentials=credentials)
    except Outcome as outcome:
        outcome = _account_outcome(rows, outcome)
        for row in rows:
            if outcome.skip_reason == SkipReason.ACCOUNT_UNUSABLE and _kept_unpublished(row, kind=kind) and _tried_before(row):
                # A record to remove stays to remove: retried until the account can be written to.
                _finish(row, Outcome(outcome.message, kind=ErrorKind.TRANSIENT), actor=actor, result=result)
            else:
                _finish(row, outcome, actor=actor, result=result)
        return
    works = []
    for row in rows:
        if _kept_unpublished(row, kind=kind) and _tried_before(row):
            reason, why = _unpublished_because(row, kind=kind)
            _record_remove(repo, row, reason=reason, why=why, actor=actor, result=result, kind=kind)
            continue
        try:
            works.append(prepare(row, kind=kind))
        except Outcome as outcome:
            _finish(row, outcome, actor=actor, result=result)
    works = _look_up_earlier_attempts(repo, works, actor=actor, result=result)
    blocked = repo.upload_blocked() if kind.blob_make and any(work.blob is None for work in works) else None
    if blocked:  # known before any thumbnail is made or request spent
        for work in works:
            _finish(work.row, _pds_outcome(f"Uploading the {kind.blob_field}", blocked), actor=actor, result=result)
        return
    if kind.blob_make:
        works = _thumbnails_make(works, actor=actor, result=result)
    for chunk in _chunks(works, pds.MAX_WRITES_PER_CALL):
        _chunk_write(repo, chunk, actor=actor, result=result)


def _tried_before(row: PaintingMigration) -> bool:
    """Whether an earlier attempt may have written the row's record (it
    has a key, or this is not its first attempt): only then is the PDS
    asked what it holds."""
    return row.attempts > 1 or bool(row.rkey)


def _kept_unpublished(row: PaintingMigration, *, kind: RecordKind) -> bool:
    """Whether the document must have no record: staff took it down, or it
    is deleted in MongoDB and its kind keeps no record of one (a nuked
    painting under NUKED_PAINTINGS=skip, a deleted mood)."""
    return row.unpublished_at is not None or (row.nuked and bool(kind.deleted_why()))


def _unpublished_because(row: PaintingMigration, *, kind: RecordKind) -> tuple[str, str]:
    """(skip reason, why) of a document that must have no record."""
    if row.unpublished_at is not None:
        return SkipReason.TAKEN_DOWN, f"Taken down by {row.unpublished_by}: {row.unpublished_reason}"
    return SkipReason.NUKED, kind.deleted_why()


def _gone_settle(owner: str, rows: list[PaintingMigration], *, credentials, actor: str, result: BatchResult, kind: RecordKind) -> list[PaintingMigration]:
    """Remove the records of the paintings MongoDB no longer has (looked up
    once more: one that came back is migrated as usual). An account the PDS
    reports deleted, deactivated or taken down is not logged in to: its
    paintings end skipped, saying so. Returns the rows left to migrate."""
    gone = [row for row in rows if row.gone_since is not None]
    if not gone:
        return rows
    rows = [row for row in rows if row.gone_since is None]
    try:
        present = source.refs_present((row.ref for row in gone), kind=kind)
    except PyMongoError as error:
        for row in gone:
            _finish(row, Outcome(f"Could not check MongoDB for the {kind.name}: {type(error).__name__}", kind=ErrorKind.TRANSIENT), actor=actor, result=result)
        return rows
    back = [row for row in gone if row.ref in present]
    if back:
        PaintingMigration.objects.filter(pk__in=[row.pk for row in back]).update(gone_since=None)
        for row in back:
            row.gone_since = None
            painting_note(row, actor=actor, message=f"MongoDB has this {kind.name} again; it is migrated as usual.")
    missing = [row for row in gone if row.ref not in present]
    why = f"MongoDB no longer has this {kind.name}"
    for row in [row for row in missing if not _tried_before(row)]:
        _finish(row, Outcome(f"{why}; it had no record.", skip_reason=SkipReason.GONE), actor=actor, result=result)
    missing = [row for row in missing if _tried_before(row)]
    if missing:
        _gone_remove(owner, missing, credentials=credentials, why=why, actor=actor, result=result, kind=kind)
    return rows + back


def _gone_remove(owner: str, rows: list[PaintingMigration], *, credentials, why: str, actor: str, result: BatchResult, kind: RecordKind) -> None:
    did = next((row.account_did for row in rows if row.account_did), "")
    try:
        status = pds.account_status(did) if did else "deleted"
    except pds.PdsError as error:
        for row in rows:
            _finish(row, _pds_outcome(f"Could not ask the PDS about the account {did}", error, removing=True), actor=actor, result=result)
        return
    if status == "deleted":  # erased: the account's records went with it
        for row in rows:
            _skip_removed(row, SkipReason.GONE, f"{why}, and its account {did or '(unknown)'} is deleted on the PDS: its records went with it.", actor=actor, result=result)
        return
    if status != "active":
        # Its records are not served while it is, but would be again if it
        # came back: the removal waits for that, retried with backoff.
        message = f"{why}; its account {did} is {status} on the PDS, so its record cannot be removed yet. Retried until it can."
        for row in rows:
            _finish(row, Outcome(message, kind=ErrorKind.TRANSIENT), actor=actor, result=result)
        return
    try:
        if not owner or (credentials is not None and credentials.usable):
            repo = _repo_for(owner, rows, credentials=credentials)
        else:  # the user's MongoDB documents went too: the stored session is all there is
            repo = pds.repo_for(did=did)
    except Outcome as outcome:
        for row in rows:
            _finish(row, Outcome(f"{why}; removing its record: {outcome.message}", kind=outcome.kind or ErrorKind.TRANSIENT), actor=actor, result=result)
        return
    except pds.PdsError as error:
        for row in rows:
            _finish(row, _pds_outcome(f"{why}; opening the account {did} to remove its record failed", error, removing=True), actor=actor, result=result)
        return
    for row in rows:
        _record_remove(repo, row, reason=SkipReason.GONE, why=why, actor=actor, result=result, kind=kind, clear_source=False)


def _account_outcome(rows: list[PaintingMigration], outcome: Outcome) -> Outcome:
    """A failure to open an account, or the readable skip it is when the
    PDS says the account is deleted, deactivated or taken down: no retry
    would help until that changes (staff re-check the skip then)."""
    did = next((row.account_did for row in rows if row.account_did), "")
    if not did or outcome.skip_reason or outcome.kind != ErrorKind.PERMANENT:
        return outcome
    try:
        status = pds.account_status(did)
    except pds.PdsError:
        return outcome
    if status == "active":
        return outcome
    return Outcome(f"The account {did} is {status} on the PDS: nothing can be written to it. Re-check the painting when that changes.", skip_reason=SkipReason.ACCOUNT_UNUSABLE)


def _wait_for_uploads(rows: list[PaintingMigration], *, actor: str, result: BatchResult, kind: RecordKind) -> list[PaintingMigration]:
    """When this machine can upload nothing before a reset, the paintings
    that need an upload (never tried, so no record to look for) wait without
    their account being opened: no login is spent on them. Returns the rows
    left to run (a nuked painting to unpublish, a retry that may find its
    record written)."""
    blocked = pds.uploads_blocked() if kind.blob_make else None
    if blocked is None:
        return rows
    left = []
    for row in rows:
        if _tried_before(row) or _kept_unpublished(row, kind=kind):
            left.append(row)
            continue
        try:
            prepare(row, kind=kind)
        except Outcome as outcome:  # skipped for its own fields, as it would be anyway
            _finish(row, outcome, actor=actor, result=result)
            continue
        _finish(row, _pds_outcome(f"Uploading the {kind.blob_field}", blocked), actor=actor, result=result)
    return left


def _repo_for(owner: str, rows: list[PaintingMigration], *, credentials: "source.Credentials | None") -> pds.Repo:
    """The account's repository, logged in once per process at most.
    ``credentials``: the owner's, from users.atproto (None: it has none)."""
    if not owner:
        account = Account.objects.filter(is_anonymous=True).first()
        if account is None:
            raise Outcome("There is no anonymous account yet: run manage.py create_anon_account.", kind=ErrorKind.PERMANENT)
        credentials = source.Credentials(did=account.did, handle=account.handle, password=account.password)
    else:
        if credentials is None:
            raise Outcome("The owner has no ATProto account in MongoDB (users.atproto).", skip_reason=SkipReason.NO_ACCOUNT)
        if not credentials.usable:
            raise Outcome(credentials.problem, skip_reason=SkipReason.NO_ACCOUNT)
    try:
        repo = pds.repo_for(did=credentials.did, handle=credentials.handle, password=credentials.password)
    except pds.PdsError as error:
        if owner and not credentials.did and error.permanent:
            message = f"users.atproto has no did, and the PDS refused its handle {credentials.handle} and password ({error}): the account was never completed."
            raise Outcome(message, skip_reason=SkipReason.INCOMPLETE_ACCOUNT) from None
        raise _pds_outcome(f"Could not open the account {credentials}", error) from None
    stale = [row.pk for row in rows if row.account_did != repo.did]
    if stale:
        PaintingMigration.objects.filter(pk__in=stale).update(account_did=repo.did)
        for row in rows:
            row.account_did = repo.did
    return repo


def _record_remove(
    repo, row: PaintingMigration, *, reason: str, why: str, actor: str, result: BatchResult, kind: RecordKind, clear_source: bool = True
) -> None:
    """A painting that must have no record (``why``: nuked under
    NUKED_PAINTINGS=skip, taken down, deleted from MongoDB) and that was
    migrated, or tried by an attempt that stopped midway and may have
    written its record: delete the record and (``clear_source``) MongoDB's
    ``atproto`` reference to it, then skip it for ``reason``."""
    rkey = row.rkey
    try:
        if not rkey:
            rkey = _record_left_behind(repo, row, kind=kind)
            if not rkey:
                _finish(row, Outcome(f"{why}; no record was written for it.", skip_reason=reason), actor=actor, result=result)
                return
        repo.record_delete(collection=kind.nsid, rkey=rkey)
        if clear_source:
            source.rkeys_clear([row.ref], kind=kind)
    except pds.PdsError as error:
        _finish(row, _pds_outcome(f"Removing record {rkey or 'left by an earlier attempt'} failed ({why[0].lower()}{why[1:]})", error, removing=True), actor=actor, result=result)
        return
    except PyMongoError as error:
        _finish(row, Outcome(f"Record {rkey} removed; clearing MongoDB failed: {type(error).__name__}", kind=ErrorKind.TRANSIENT), actor=actor, result=result)
        return
    uri = f"at://{repo.did}/{kind.nsid}/{rkey}"
    _skip_removed(row, reason, f"Removed record {uri}: {why[0].lower()}{why[1:]}.", actor=actor, result=result)


def _record_left_behind(repo, row: PaintingMigration, *, kind: RecordKind) -> str:
    """The key of the record an earlier attempt wrote for ``row`` before
    it stopped, or "" when there is none. Raises PdsError."""
    try:
        rkey = kind.record_key(when=row.when, ref=row.ref)
    except (ValueError, TypeError):
        return ""
    stored = repo.record_get(collection=kind.nsid, rkey=rkey)
    return rkey if stored is not None and stored.value.get("ref") == row.ref else ""


def _skip_removed(row: PaintingMigration, reason: str, detail: str, *, actor: str, result: BatchResult) -> None:
    """Skip a painting whose record was just removed, forgetting the record."""
    if _end(row, to=Status.SKIPPED, message=detail, actor=actor, result=result, skip_reason=reason, skip_detail=detail,
            rkey="", record_uri="", record_cid="", record_fingerprint=""):  # fmt: skip
        result.skipped[reason] += 1


def prepare(row: PaintingMigration, *, kind: RecordKind = PAINTING) -> Work:
    """The row's way through the batch. Raises Outcome (skipped) for a row
    that cannot make a record, whatever its fields hold."""
    if not all(getattr(row, name) for name in kind.required_columns):
        names = ["date" if name == "when" else name for name in kind.required_columns]
        lacks = " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
        raise Outcome(f"The {kind.name} lacks a {lacks}; re-run manage.py seed {kind.plural}.", skip_reason=SkipReason.INVALID_RECORD)
    if _kept_unpublished(row, kind=kind):
        reason, why = _unpublished_because(row, kind=kind)
        raise Outcome(f"{why}.", skip_reason=reason)
    try:
        rkey = row.rkey or kind.record_key(when=row.when, ref=row.ref)
    except ValueError:
        if not source.is_object_id(row.ref):
            raise Outcome(f"`_id` {row.ref!r} is not an ObjectId: no record key can be made.", skip_reason=SkipReason.BAD_REF) from None
        raise Outcome(f"`when` is {row.when:%Y-%m-%d}, outside the dates a record key can hold (1970 to 2255).", skip_reason=SkipReason.BAD_WHEN) from None
    return Work(row=row, rkey=rkey, kind=kind)


def _look_up_earlier_attempts(repo, works: list[Work], *, actor: str, result: BatchResult) -> list[Work]:
    """Reconcile paintings tried before with what the PDS already holds, so
    a retry never writes a second record. First attempts skip the lookup."""
    tried, remaining = [], []
    for work in works:
        (tried if _tried_before(work.row) else remaining).append(work)
    if not tried:
        return remaining
    try:  # a batch's works are of one account and one kind
        stored_at = repo.records_at(collection=tried[0].kind.nsid, rkeys=[work.rkey for work in tried])
    except pds.PdsError as error:
        for work in tried:
            _finish(work.row, _pds_outcome(f"Could not look up record {work.rkey}", error), actor=actor, result=result)
        return remaining
    for work in tried:
        stored = stored_at.get(work.rkey)
        if stored is None:
            try:
                work.blob = _blob_still_held(repo, work)
            except pds.PdsError as error:
                _finish(work.row, _pds_outcome(f"Could not look up the {work.kind.blob_field} {work.row.thumbnail_cid}", error), actor=actor, result=result)
                continue
            remaining.append(work)
        elif stored.value.get("ref") != work.row.ref:
            message = f"Record key {work.rkey} holds another {work.kind.name} ({stored.value.get('ref')}): a TID collision."
            _finish(work.row, Outcome(message, kind=ErrorKind.PERMANENT), actor=actor, result=result)
        elif _record_current(work.row, stored.value, kind=work.kind):
            _adopt(repo, work, stored, actor=actor, result=result)
        else:
            work.stored, work.action = stored.value, "update"
            work.blob = _reusable_blob(work.row, stored.value, kind=work.kind)
            remaining.append(work)
    return remaining


def _blob_still_held(repo, work: Work) -> dict | None:
    """For a document whose record is gone from the PDS (a restore of an
    older backup, a deletion by hand, a take-down), the blob that record
    held, when the PDS still has it (another record of the account keeps
    the same thumbnail): written again with it, nothing is fetched or
    uploaded. None when the row knows of no blob or the PDS lacks it."""
    row, kind = work.row, work.kind
    if not (kind.blob_field and row.thumbnail_cid and row.thumbnail_mime and row.thumbnail_size):
        return None
    if not repo.blob_has(row.thumbnail_cid):
        return None
    return {"$type": "blob", "ref": {"$link": row.thumbnail_cid}, "mimeType": row.thumbnail_mime, "size": row.thumbnail_size}


def _reusable_blob(row: PaintingMigration, value: dict, *, kind: RecordKind) -> dict | None:
    """The blob of a stored record that is still the document's (for the
    painting: the same painting and slug; a rename, a new code, a new
    lexicon or media URL change the record, not the image), else None."""
    blob = value.get(kind.blob_field) if kind.blob_field else None
    if not isinstance(blob, dict) or not _blob_cid(blob) or value.get("ref") != row.ref or not kind.same_blob(row, value):
        return None
    return blob


def record_for(row: PaintingMigration, *, has_recording: bool, thumbnail, kind: RecordKind = PAINTING) -> dict:
    """The record a row of ``kind`` makes, holding the blob ``thumbnail``.
    Raises ImageError for a handle or slug unfit for a URL."""
    return kind.record_from_row(row, has_recording=has_recording, blob=thumbnail)


def _record_current(row: PaintingMigration, value: dict, *, kind: RecordKind) -> bool:
    # A recording the row knows of (a guest slug names it, or one found before
    # under these fields) must be in the record; one the record has was found
    # on storage by the attempt that wrote it.
    blob = value.get(kind.blob_field) if kind.blob_field else None
    expected = record_for(row, has_recording=row.has_recording or kind.recording_in(value), thumbnail=blob, kind=kind)
    return all(value.get(name) == expected[name] for name in expected if name != "$type")


def _adopt(repo, work: Work, stored, *, actor: str, result: BatchResult) -> None:
    """Take over a record an earlier attempt wrote, and finish its painting."""
    blob = (stored.value.get(work.kind.blob_field) if work.kind.blob_field else None) or {}
    try:
        gone = source.rkeys_write_back([source.WriteBack(ref=work.row.ref, rkey=work.rkey, uri=stored.uri, cid=stored.cid)], kind=work.kind)
    except PyMongoError as error:
        _finish(work.row, Outcome(f"MongoDB write-back failed: {type(error).__name__}", kind=ErrorKind.TRANSIENT), actor=actor, result=result)
        return
    if gone:
        _painting_gone(repo, work, actor=actor, result=result)
        return
    # Its recordingUrl (if any) was found on storage under these very fields.
    fields = _migrated_fields(work.row, rkey=work.rkey, uri=stored.uri, cid=stored.cid, blob=blob, kind=work.kind)
    if work.row.written_by.startswith(UNKNOWN_RUN):  # written before the state table knew of it: not by this run
        fields["written_by"] = work.row.written_by
    adopted = _migrated(
        work.row, {**fields, "has_recording": work.kind.recording_in(stored.value)},
        message=f"Found record {stored.uri} from an earlier attempt; adopted it without writing.", actor=actor, result=result,
    )  # fmt: skip
    result.adopted += adopted


def _thumbnails_make(works: list[Work], *, actor: str, result: BatchResult) -> list[Work]:
    """Fetch images and make thumbnails on a few threads (libvips and the
    network release the GIL); drop the paintings that fail."""
    ready = []
    for work, outcome in zip(works, thumbnail_pool().map(thumbnail_for, works), strict=True):
        if isinstance(outcome, Outcome):
            _finish(work.row, outcome, actor=actor, result=result)
        else:
            ready.append(work)
    return ready


_pool: tuple[int, int, ThreadPoolExecutor] | None = None


def thumbnail_pool() -> ThreadPoolExecutor:
    """The process's THUMBNAIL_THREADS threads (for batches and dry-run
    previews), kept for its life: each keeps its HTTP connection to the image
    storage from one batch to the next. A forked worker makes its own
    (threads do not survive a fork)."""
    global _pool
    key = (os.getpid(), settings.THUMBNAIL_THREADS)
    if _pool is None or _pool[:2] != key:
        _pool = (*key, ThreadPoolExecutor(max_workers=settings.THUMBNAIL_THREADS, thread_name_prefix="thumbnails"))
    return _pool[2]


def thumbnail_for(work: Work) -> Work | Outcome:
    """Make the work's blob (a thumbnail, a fetched video) and learn whether
    the storage has its recording."""
    row, kind = work.row, work.kind
    if work.blob is not None:  # the stored record's blob is kept: nothing to fetch
        work.has_recording = row.has_recording or kind.recording_in(work.stored or {})
        return work
    try:
        work.thumbnail = kind.blob_make(row)
        work.has_recording = row.has_recording or kind.recording_exists(row)
    except ImageError as error:
        return Outcome(error.message, kind=error.kind, skip_reason=error.skip_reason or "")
    except ThumbnailError as error:
        return Outcome(error.message, skip_reason=SkipReason.INVALID_IMAGE)
    return work


def _chunk_write(repo, works: list[Work], *, actor: str, result: BatchResult) -> None:
    """Upload the chunk's blobs, then write its records in one applyWrites,
    then write the keys back to MongoDB, then mark the paintings migrated.
    No more than the account's write budget takes now is uploaded: the rest
    waits for its reset rather than spend uploads on records it cannot write."""
    works = _within_write_budget(repo, works, actor=actor, result=result)
    works = _blobs_upload(repo, works, actor=actor, result=result)
    if not works:
        return
    _notes(works, actor=actor, message=lambda work: f"Writing record {work.rkey} ({work.action}).")
    try:
        refs = repo.apply_writes([pds.Write(work.action, work.kind.nsid, work.rkey, work.record) for work in works])
    except pds.RecordConflict:
        # Someone wrote some of these since we looked: reconcile each one alone.
        for work in works:
            _single_write(repo, work, actor=actor, result=result)
        return
    except pds.PdsError as error:
        if error.permanent and len(works) > 1:  # find the one painting at fault
            for work in works:
                _single_write(repo, work, actor=actor, result=result)
            return
        for work in works:
            _finish(work.row, _pds_outcome("Writing the record failed", error), actor=actor, result=result)
        return
    _written(repo, works, refs, actor=actor, result=result)


def _within_write_budget(repo, works: list[Work], *, actor: str, result: BatchResult) -> list[Work]:
    capacity = repo.write_capacity()
    if capacity is None or capacity >= len(works):
        return works
    blocked = repo.writes_blocked(len(works))
    if blocked is None:
        return works
    for work in works[capacity:]:
        _finish(work.row, _pds_outcome("Writing the record", blocked), actor=actor, result=result)
    return works[:capacity]


def _single_write(repo, work: Work, *, actor: str, result: BatchResult) -> None:
    try:
        stored = repo.record_get(collection=work.kind.nsid, rkey=work.rkey)
        if stored is not None and stored.value.get("ref") != work.row.ref:
            raise Outcome(f"Record key {work.rkey} holds another {work.kind.name} ({stored.value.get('ref')}).", kind=ErrorKind.PERMANENT)
        ref = repo.record_put(collection=work.kind.nsid, rkey=work.rkey, record=work.record)
    except pds.PdsError as error:
        _finish(work.row, _pds_outcome("Writing the record failed", error), actor=actor, result=result)
        return
    except Outcome as outcome:
        _finish(work.row, outcome, actor=actor, result=result)
        return
    _written(repo, [work], [ref], actor=actor, result=result)


def _blobs_upload(repo, works: list[Work], *, actor: str, result: BatchResult) -> list[Work]:
    """Upload each blob (none for a kind without one) and build and validate
    its record. A record that does not match the lexicon never reaches the
    PDS. A blob the account already uploaded in this chunk (the same bytes
    make the same CID) is not uploaded again."""
    ready, uploaded = [], {}
    for work in works:
        row = work.row
        try:
            blob = work.blob
            if blob is None and work.thumbnail is not None:
                blob = uploaded.get(work.thumbnail.content)
            if blob is None and work.thumbnail is not None:
                blob = uploaded[work.thumbnail.content] = repo.blob_upload(work.thumbnail.content, mime_type=work.thumbnail.mime_type)
            work.record = record_for(row, has_recording=work.has_recording, thumbnail=blob, kind=work.kind)
            record_validate(work.record, nsid=work.kind.nsid)
        except pds.PdsError as error:
            _finish(row, _pds_outcome(f"Uploading the {work.kind.blob_field} failed", error), actor=actor, result=result)
            continue
        except InvalidRecord as error:
            _finish(row, Outcome(str(error), skip_reason=SkipReason.INVALID_RECORD), actor=actor, result=result)
            continue
        except ImageError as error:
            _finish(row, Outcome(error.message, skip_reason=SkipReason.BAD_SLUG), actor=actor, result=result)
            continue
        ready.append(work)
    return ready


def _written(repo, works: list[Work], refs, *, actor: str, result: BatchResult) -> None:
    kind = works[0].kind
    try:
        gone = source.rkeys_write_back(
            (source.WriteBack(ref=work.row.ref, rkey=work.rkey, uri=ref.uri, cid=ref.cid) for work, ref in zip(works, refs, strict=True)), kind=kind
        )
    except PyMongoError as error:
        # The records exist; the next attempt finds and adopts them.
        for work, ref in zip(works, refs, strict=True):
            message = f"Record {ref.uri} written, but the MongoDB write-back failed ({type(error).__name__}); the next attempt adopts the record."
            _finish(work.row, Outcome(message, kind=ErrorKind.TRANSIENT), actor=actor, result=result)
        return
    changes = []
    for work, ref in zip(works, refs, strict=True):
        if work.row.ref not in gone:
            verb = "Updated" if work.action == "update" else "Wrote"
            if work.blob is not None and work.action == "create":
                message = f"Wrote record {ref.uri} with the {kind.blob_field} {_blob_cid(work.blob)} the PDS still held (nothing fetched or uploaded); MongoDB has {kind.migrated_field}."
            elif work.blob is not None:
                message = f"Updated record {ref.uri}, keeping its {kind.blob_field} {_blob_cid(work.blob)} (what it is made from is the same); MongoDB has {kind.migrated_field}."
            elif work.thumbnail is not None:
                message = f"{verb} record {ref.uri} with a {work.thumbnail.size:,}-byte {work.thumbnail.fallback} {kind.blob_field}; MongoDB has {kind.migrated_field}."
            else:
                message = f"{verb} record {ref.uri}; MongoDB has {kind.migrated_field}."
            blob = work.record.get(kind.blob_field) if kind.blob_field else None
            fields = _migrated_fields(work.row, rkey=work.rkey, uri=ref.uri, cid=ref.cid, blob=blob, thumbnail=work.thumbnail, kind=kind)
            changes.append(Change(work.row, message, {**fields, "has_recording": work.has_recording}))
    # All at once when nothing moved under us (the usual case); any painting
    # MongoDB changed meanwhile, or whose claim ran out, one by one.
    holder = works[0].row.claimed_by
    unmade = paintings_transition_each(changes, to=Status.MIGRATED, actor=actor, holder=holder, expect=UNCHANGED_WHILE_RUNNING)
    result.migrated += len(changes) - len(unmade)
    for change in unmade:
        _migrated(change.painting, change.fields, message=change.message, actor=actor, result=result)
    for work in works:
        if work.row.ref in gone:
            _painting_gone(repo, work, actor=actor, result=result)


def _painting_gone(repo, work: Work, *, actor: str, result: BatchResult) -> None:
    """MongoDB lost the painting while its record was written: remove the
    record (no record without a painting) and skip it."""
    try:
        repo.record_delete(collection=work.kind.nsid, rkey=work.rkey)
    except pds.PdsError as error:
        _finish(work.row, _pds_outcome(f"MongoDB no longer has the {work.kind.name}; removing record {work.rkey} failed", error, removing=True), actor=actor, result=result)
        return
    uri = f"at://{repo.did}/{work.kind.nsid}/{work.rkey}"
    _skip_removed(work.row, SkipReason.GONE, f"MongoDB no longer has this {work.kind.name}; removed record {uri} written for it.", actor=actor, result=result)


def _migrated_fields(row, *, rkey, uri, cid, blob, kind: RecordKind, thumbnail=None) -> dict:
    """What a migrated row holds of the record just written (or adopted)."""
    fields = {
        "rkey": rkey, "record_uri": uri, "record_cid": cid,
        "last_error": "", "error_kind": "", "skip_reason": "", "skip_detail": "", "claimed_by": "",
        "thumbnail_cid": _blob_cid(blob), "record_fingerprint": row.source_fingerprint, "migrated_at": timezone.now(),
        "written_by": _run.get()[:150], "record_shape": kind.record_shape(),
    }  # fmt: skip
    if thumbnail is not None:
        fields.update(thumbnail_size=thumbnail.size, thumbnail_mime=thumbnail.mime_type, thumbnail_fallback=thumbnail.fallback)
    else:  # adopted, or written keeping its blob: the blob's size and type as the record has them, else what the row knew
        # (the fallback that made it is known only to the attempt that made it); every change sets the same fields
        size, mime = (blob.get("size"), blob.get("mimeType")) if isinstance(blob, dict) and _blob_cid(blob) else (None, None)
        fields.update(
            thumbnail_size=size if isinstance(size, int) and size >= 0 else row.thumbnail_size,
            thumbnail_mime=mime[:32] if isinstance(mime, str) else row.thumbnail_mime,
            thumbnail_fallback=row.thumbnail_fallback,
        )
    return fields


def _migrated(row, fields: dict, *, message, actor, result: BatchResult) -> bool:
    """Mark the painting migrated with the record just written (or adopted),
    unless MongoDB changed its fields since the batch loaded it: then it goes
    back to pending, knowing its record, to be rewritten. Returns whether it
    is migrated. ``fields``: from ``_migrated_fields``, with ``has_recording``
    when the attempt learned it."""
    fields = dict(fields)
    learned = {"has_recording": fields.pop("has_recording")} if "has_recording" in fields else {}
    holder = row.claimed_by
    if painting_transition(
        row, to=Status.MIGRATED, actor=actor, message=message, holder=holder,
        expect={name: getattr(row, name) for name in UNCHANGED_WHILE_RUNNING}, **fields, **learned,
    ):  # fmt: skip
        result.migrated += 1
        return True
    # The recording was looked for under the old fields: it is not learned.
    message += " MongoDB changed while it was being migrated, so the record will be rewritten from the new fields."
    fields.pop("migrated_at")
    if _end(row, to=Status.PENDING, message=message, actor=actor, result=result, **fields):
        result.changed += 1
    return False


def _end(row: PaintingMigration, *, to: str, message: str, actor: str, result: BatchResult, **fields) -> bool:
    """End the painting's attempt if this batch still holds it. When its
    claim ran out and another worker took it, leave it to that worker, say
    so, and count it lost."""
    holder = row.claimed_by
    fields.setdefault("claimed_by", "")
    if painting_transition(row, to=to, actor=actor, message=message, holder=holder, **fields):
        return True
    result.lost += 1
    now_held_by = PaintingMigration.objects.filter(pk=row.pk).values_list("claimed_by", flat=True).first() or "no one"
    log.warning("%s lost its claim on %s before finishing (now held by %s)", holder, row, now_held_by)
    painting_note(row, actor=actor, message=f"{holder} lost its claim before finishing (its lease ran out); not changed. Outcome it reached: {message}")
    return False


def _blob_cid(blob) -> str:
    if isinstance(blob, dict):
        return (blob.get("ref") or {}).get("$link", "")
    return getattr(getattr(blob, "ref", None), "link", "") or ""


def _finish(row: PaintingMigration, outcome: Outcome, *, actor: str, result: BatchResult) -> None:
    """End a painting's attempt as skipped (with its reason) or failed
    (with its error, retryable)."""
    if outcome.waiting is not None:
        _wait(row, outcome, actor=actor, result=result)
    elif outcome.skip_reason:
        if _end(row, to=Status.SKIPPED, actor=actor, result=result, message=f"Skipped: {outcome.message}",
                skip_reason=outcome.skip_reason, skip_detail=outcome.message[:500]):  # fmt: skip
            result.skipped[outcome.skip_reason] += 1
    else:
        kind = outcome.kind or ErrorKind.TRANSIENT
        if _end(row, to=Status.FAILED, actor=actor, result=result, message=f"Failed ({kind}): {outcome.message}",
                last_error=outcome.message, error_kind=kind):  # fmt: skip
            result.failed[error_signature(outcome.message)] += 1


def _wait(row: PaintingMigration, outcome: Outcome, *, actor: str, result: BatchResult) -> None:
    """The painting waits for a rate limit's reset; the attempt that met
    the limit wrote nothing, so it does not count as one."""
    limited = outcome.waiting
    resumes_at = limited.resumes_at
    if _end(row, to=Status.WAITING, actor=actor, result=result, message=f"Waiting: {outcome.message}",
            waiting_for=limited.limit_name[:120], not_before=resumes_at, last_error=outcome.message,
            error_kind=ErrorKind.RATE_LIMITED, attempts=F("attempts") - 1):  # fmt: skip
        result.waiting[limited.limit_name] += 1
        result.resume_at[limited.limit_name] = max(resumes_at.isoformat(), result.resume_at.get(limited.limit_name, ""))
        if limited.budget is not None:
            budget = limited.budget
            RateLimitWindow.objects.update_or_create(
                name=budget.name[:120],
                defaults={"scope": budget.scope, "limit": budget.limit, "window_seconds": budget.window, "reset_at": resumes_at},
            )


# What the PDS answers for an account that cannot be written to (deleted,
# deactivated, taken down): no retry helps until that changes.
ACCOUNT_ERRORS = frozenset({"AccountDeactivated", "AccountTakedown", "RepoDeactivated", "RepoTakendown", "RepoNotFound", "AccountNotFound"})


def _pds_outcome(doing: str, error: pds.PdsError, *, removing: bool = False) -> Outcome:
    """How a failed PDS call ends a painting's attempt: waiting when a rate
    limit is spent past the longest wait a worker is held; skipped, saying
    so, when the account cannot be written to (a removal stays failed, and
    is retried: the account may come back, and its record with it); else
    failed."""
    if isinstance(error, pds.RateLimited):
        message = f"{doing}: {error.limit_name} is spent until {error.resumes_at:%Y-%m-%d %H:%M:%S} UTC; it resumes by itself then."
        return Outcome(message, kind=ErrorKind.RATE_LIMITED, waiting=error)
    if error.error in ACCOUNT_ERRORS and not removing:
        message = f"{doing}: the PDS says the account cannot be written to ({error.error}). Re-check the painting when it is active again."
        return Outcome(message, skip_reason=SkipReason.ACCOUNT_UNUSABLE)
    return Outcome(f"{doing}: {error}", kind=error.kind)


def _notes(works: list[Work], *, actor: str, message) -> None:
    MigrationEvent.objects.bulk_create(
        MigrationEvent(painting=work.row, from_status=work.row.status, to_status=work.row.status, message=message(work), actor=actor)
        for work in works
    )


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
