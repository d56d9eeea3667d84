"""The migration engine: paintings in, records out, exactly once.

A batch holds paintings of one account. For each batch the engine claims the
rows (a conditional update: a painting another worker holds is left alone),
makes thumbnails on a few threads, uploads each blob right before the
records that use it, writes records with ``applyWrites``, writes
``atproto.rkey`` back to MongoDB in bulk, and marks the paintings migrated.

Exactly once: every record's key is a TID derived from the painting
(``tid_for_painting``), so a retry addresses the same record. A painting
that has been tried before is looked up on the PDS first: a record that is
already right is adopted without writing, a stale one is updated in place.

A failure of one painting fails only that painting; the batch goes on.
"""

import base64
import ctypes
import hashlib
import logging
import os
import socket
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone
from pymongo.errors import PyMongoError

from migrator import pds, source
from migrator.pds import calls as pds_calls
from migrator.images import ImageError, fetch_image, painting_image_url, painting_recording_url, resource_exists
from migrator.lexicon import InvalidRecord, record_validate
from migrator.models import Account, ErrorKind, MigrationEvent, PaintingMigration, SkipReason, Status
from migrator.records import painting_record
from migrator.selectors import error_signature
from migrator.services.state import painting_transition, paintings_transition
from migrator.thumbnails import Thumbnail, ThumbnailError, make_thumbnail
from migrator.tid import tid_for_painting

log = logging.getLogger(__name__)

RUNNABLE = (Status.PENDING, Status.QUEUED, Status.FAILED)


def memory_release() -> None:
    """Give freed memory back to the operating system after a batch.

    Decoded paintings are large and threads each get a malloc arena, so
    glibc would otherwise keep a worker's peak for good and its RSS would
    creep up run after run. A no-op where there is no glibc.
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# --- What staff and commands call ---------------------------------------------


def paintings_enqueue(paintings: QuerySet, *, actor: str) -> int:
    """Queue pending and failed paintings as django-q2 jobs (after commit).
    Returns how many were queued."""
    ids = paintings_transition(paintings, from_statuses=[Status.PENDING, Status.FAILED], to=Status.QUEUED, actor=actor, message="Queued for migration.")
    _jobs_enqueue(ids)
    return len(ids)


def paintings_retry(paintings: QuerySet, *, actor: str) -> int:
    """Queue failed paintings again. Returns how many were queued."""
    ids = paintings_transition(paintings, from_statuses=[Status.FAILED], to=Status.QUEUED, actor=actor, message="Retry queued.")
    _jobs_enqueue(ids)
    return len(ids)


def paintings_skip(paintings: QuerySet, *, actor: str, detail: str) -> int:
    """Skip pending, queued or failed paintings on a person's word."""
    detail = detail.strip() or "Skipped by staff."
    ids = paintings_transition(
        paintings,
        from_statuses=[Status.PENDING, Status.QUEUED, Status.FAILED],
        to=Status.SKIPPED,
        actor=actor,
        message=f"Skipped: {detail}",
        skip_reason=SkipReason.MANUAL,
        skip_detail=detail[:500],
    )
    return len(ids)


def batches_for(paintings: QuerySet, *, size: int | None = None) -> Iterator[list[int]]:
    """Ids of ``paintings`` in batches of one account each, oldest first."""
    size = size or settings.MIGRATION_BATCH_SIZE
    batch, account = [], None
    rows = paintings.order_by("owner", "when", "id").values_list("id", "owner").iterator(chunk_size=2000)
    for painting_id, owner in rows:
        if batch and (owner != account or len(batch) >= size):
            yield batch
            batch = []
        batch.append(painting_id)
        account = owner
    if batch:
        yield batch


def _jobs_enqueue(ids: list[int]) -> None:
    if not ids:
        return
    batches = list(batches_for(PaintingMigration.objects.filter(id__in=ids)))

    def send():
        from django_q.tasks import async_task

        for batch in batches:
            async_task("migrator.tasks.painting_batch_migrate", batch, group="migrate", q_options={"ack_failure": True})

    transaction.on_commit(send)


def paintings_release_stale(*, actor: str, lease: timedelta | None = None) -> int:
    """Put back to pending the paintings left running by a worker that died:
    one on this host whose process is gone, or any whose claim is older than
    the lease. Their next run reconciles with what the PDS already has."""
    if lease is None:
        lease = timedelta(seconds=settings.MIGRATION_LEASE_SECONDS)
    host = socket.gethostname() + ":"
    released = 0
    for claimant in PaintingMigration.objects.filter(status=Status.RUNNING).values_list("claimed_by", flat=True).distinct():
        gone = claimant.startswith(host) and not _process_alive(int(claimant.rsplit(":", 1)[1]))
        expired = PaintingMigration.objects.filter(status=Status.RUNNING, claimed_by=claimant, claimed_at__lt=timezone.now() - lease)
        stale = PaintingMigration.objects.filter(status=Status.RUNNING, claimed_by=claimant) if gone else expired
        released += len(
            paintings_transition(stale, from_statuses=[Status.RUNNING], to=Status.PENDING, actor=actor, message=f"Released: worker {claimant} stopped before finishing.")
        )
    return released


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` on this host still runs. A zombie (killed,
    not yet reaped by its parent) does not."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


# --- One batch ------------------------------------------------------------------


@dataclass
class BatchResult:
    migrated: int = 0
    adopted: int = 0  # records found already written by an earlier attempt
    skipped: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)
    pds_requests: int = 0
    logins: int = 0

    def add(self, other: "BatchResult") -> None:
        self.migrated += other.migrated
        self.adopted += other.adopted
        self.skipped.update(other.skipped)
        self.failed.update(other.failed)
        self.pds_requests += other.pds_requests
        self.logins += other.logins

    @classmethod
    def from_dict(cls, counts: dict) -> "BatchResult":
        return cls(**{**counts, "skipped": Counter(counts["skipped"]), "failed": Counter(counts["failed"])})

    @property
    def total(self) -> int:
        return self.migrated + sum(self.skipped.values()) + sum(self.failed.values())

    def as_dict(self) -> dict:
        return {
            "migrated": self.migrated, "adopted": self.adopted, "skipped": dict(self.skipped), "failed": dict(self.failed),
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


class _Outcome(Exception):
    """Ends one painting's way through the batch: skipped or failed."""

    def __init__(self, message: str, *, kind: str = "", skip_reason: str = ""):
        super().__init__(message)
        self.message, self.kind, self.skip_reason = message, kind, skip_reason


def paintings_migrate(ids: Iterable[int], *, actor: str) -> BatchResult:
    """Migrate the paintings ``ids`` (runnable ones; others are left alone).
    Never raises for a painting's failure: each one ends migrated, skipped
    or failed, with its events."""
    result = BatchResult()
    requests_before, logins_before = pds_calls.REQUESTS[0], sum(pds.LOGINS.values())
    claimed = paintings_transition(
        PaintingMigration.objects.filter(id__in=list(ids)),
        from_statuses=RUNNABLE,
        to=Status.RUNNING,
        actor=actor,
        message=f"Claimed by {worker_name()}.",
        claimed_by=worker_name(),
        claimed_at=timezone.now(),
        attempts=F("attempts") + 1,
    )
    groups = defaultdict(list)
    for row in PaintingMigration.objects.filter(id__in=claimed).order_by("when", "id"):
        groups[row.owner].append(row)
    for owner, rows in groups.items():
        try:
            _account_migrate(owner, rows, actor=actor, result=result)
        except Exception as error:  # noqa: BLE001 - a bug must not strand paintings as running
            log.exception("Unexpected error migrating a batch of %s", owner or "anonymous paintings")
            _fail_unfinished(rows, error, actor=actor, result=result)
    result.pds_requests = pds_calls.REQUESTS[0] - requests_before
    result.logins = sum(pds.LOGINS.values()) - logins_before
    memory_release()
    return result


def _fail_unfinished(rows: list[PaintingMigration], error: Exception, *, actor: str, result: BatchResult) -> None:
    """After an unexpected error, fail the batch's paintings still running
    (retryable), so none waits for a lease to run out."""
    message = f"Unexpected error: {type(error).__name__}: {error}"[:2000]
    for row in PaintingMigration.objects.filter(pk__in=[row.pk for row in rows], status=Status.RUNNING):
        _finish(row, _Outcome(message, kind=ErrorKind.TRANSIENT), actor=actor, result=result)


def _account_migrate(owner: str, rows: list[PaintingMigration], *, actor: str, result: BatchResult) -> None:
    try:
        repo = _repo_for(owner, rows, actor=actor)
    except _Outcome as outcome:
        for row in rows:
            _finish(row, outcome, actor=actor, result=result)
        return
    works = []
    for row in rows:
        if row.nuked and settings.NUKED_PAINTINGS == "skip" and row.rkey:
            _record_remove(repo, row, actor=actor, result=result)
            continue
        try:
            works.append(_prepare(row))
        except _Outcome as outcome:
            _finish(row, outcome, actor=actor, result=result)
    works = _look_up_earlier_attempts(repo, works, actor=actor, result=result)
    works = _thumbnails_make(works, actor=actor, result=result)
    for chunk in _chunks(works, pds.MAX_WRITES_PER_CALL):
        _chunk_write(repo, chunk, actor=actor, result=result)


def _repo_for(owner: str, rows: list[PaintingMigration], *, actor: str) -> pds.Repo:
    """The account's repository, logged in once per process at most."""
    if not owner:
        account = Account.objects.filter(is_anonymous=True).first()
        if account is None:
            raise _Outcome("There is no anonymous account yet: run manage.py create_anon_account.", kind=ErrorKind.PERMANENT)
        credentials = source.Credentials(did=account.did, handle=account.handle, password=account.password)
    else:
        credentials = source.credentials_for([owner]).get(owner)
        if credentials is None:
            raise _Outcome("The owner has no ATProto account in MongoDB (users.atproto).", skip_reason=SkipReason.NO_ACCOUNT)
    try:
        repo = pds.repo_for(did=credentials.did, handle=credentials.handle, password=credentials.password)
    except pds.PdsError as error:
        raise _Outcome(f"Could not open the account {credentials}: {error}", kind=error.kind) from None
    stale = [row.pk for row in rows if row.account_did != repo.did]
    if stale:
        PaintingMigration.objects.filter(pk__in=stale).update(account_did=repo.did)
        for row in rows:
            row.account_did = repo.did
    return repo


def _record_remove(repo, row: PaintingMigration, *, actor: str, result: BatchResult) -> None:
    """A migrated painting nuked since, under NUKED_PAINTINGS=skip: delete
    its record and MongoDB's reference to it, then skip it."""
    try:
        repo.record_delete(collection=settings.PAINTING_COLLECTION, rkey=row.rkey)
        source.rkeys_clear([row.ref])
    except pds.PdsError as error:
        _finish(row, _Outcome(f"Removing record {row.rkey} failed: {error}", kind=error.kind), actor=actor, result=result)
        return
    except PyMongoError as error:
        _finish(row, _Outcome(f"Record {row.rkey} removed; clearing MongoDB failed: {error}", kind=ErrorKind.TRANSIENT), actor=actor, result=result)
        return
    detail = f"Removed record {row.rkey}: the painting is nuked and NUKED_PAINTINGS=skip."
    painting_transition(
        row, to=Status.SKIPPED, actor=actor, message=detail, skip_reason=SkipReason.NUKED, skip_detail=detail,
        rkey="", record_uri="", record_cid="", claimed_by="",
    )
    result.skipped[SkipReason.NUKED] += 1


def _prepare(row: PaintingMigration) -> Work:
    if row.when is None or not row.slug or not row.code:
        raise _Outcome("The painting lacks a slug, code or date; re-run seed_paintings.", skip_reason=SkipReason.INVALID_RECORD)
    if row.nuked and settings.NUKED_PAINTINGS == "skip":
        raise _Outcome("The painting is nuked and NUKED_PAINTINGS=skip.", skip_reason=SkipReason.NUKED)
    return Work(row=row, rkey=row.rkey or tid_for_painting(when=row.when, ref=row.ref))


def _look_up_earlier_attempts(repo, works: list[Work], *, actor: str, result: BatchResult) -> list[Work]:
    """Reconcile paintings tried before with what the PDS already holds, so
    a retry never writes a second record. First attempts skip the lookup."""
    remaining = []
    for work in works:
        if work.row.attempts <= 1 and not work.row.rkey:
            remaining.append(work)
            continue
        try:
            stored = repo.record_get(collection=settings.PAINTING_COLLECTION, rkey=work.rkey)
        except pds.PdsError as error:
            _finish(work.row, _Outcome(f"Could not look up record {work.rkey}: {error}", kind=error.kind), actor=actor, result=result)
            continue
        if stored is None:
            remaining.append(work)
        elif stored.value.get("ref") != work.row.ref:
            message = f"Record key {work.rkey} holds another painting ({stored.value.get('ref')}): a TID collision."
            _finish(work.row, _Outcome(message, kind=ErrorKind.PERMANENT), actor=actor, result=result)
        elif _record_current(work.row, stored.value):
            _adopt(work, stored, actor=actor, result=result)
        else:
            work.stored, work.action = stored.value, "update"
            remaining.append(work)
    return remaining


def _record_for(row: PaintingMigration, *, has_recording: bool, thumbnail) -> dict:
    """The record a painting's row makes. Raises ImageError for a handle or
    slug unfit for a URL."""
    return painting_record(
        ref=row.ref, slug=row.slug, code=row.code, when=row.when, owner_handle=row.owner_handle or None,
        nuked=row.nuked, has_recording=has_recording, thumbnail=thumbnail,
    )


def _record_current(row: PaintingMigration, value: dict) -> bool:
    expected = _record_for(row, has_recording=bool(value.get("recordingUrl")), thumbnail=value.get("thumbnail"))
    return all(value.get(name) == expected[name] for name in expected if name != "$type")


def _adopt(work: Work, stored, *, actor: str, result: BatchResult) -> None:
    """Take over a record an earlier attempt wrote, and finish its painting."""
    blob = stored.value.get("thumbnail") or {}
    try:
        source.rkeys_write_back([source.WriteBack(ref=work.row.ref, rkey=work.rkey, uri=stored.uri)])
    except PyMongoError as error:
        _finish(work.row, _Outcome(f"MongoDB write-back failed: {error}", kind=ErrorKind.TRANSIENT), actor=actor, result=result)
        return
    _migrated(
        work.row, rkey=work.rkey, uri=stored.uri, cid=stored.cid, blob=blob,
        message=f"Found record {stored.uri} from an earlier attempt; adopted it without writing.", actor=actor,
    )
    result.migrated += 1
    result.adopted += 1


def _thumbnails_make(works: list[Work], *, actor: str, result: BatchResult) -> list[Work]:
    """Fetch images and make thumbnails on a few threads (Pillow and the
    network release the GIL); drop the paintings that fail."""
    ready = []
    with ThreadPoolExecutor(max_workers=settings.THUMBNAIL_THREADS) as pool:
        for work, outcome in zip(works, pool.map(_thumbnail_for, works), strict=True):
            if isinstance(outcome, _Outcome):
                _finish(work.row, outcome, actor=actor, result=result)
            else:
                ready.append(work)
    return ready


def _thumbnail_for(work: Work) -> Work | _Outcome:
    row, handle = work.row, work.row.owner_handle or None
    try:
        work.thumbnail = make_thumbnail(fetch_image(painting_image_url(handle=handle, slug=row.slug)), max_pixels=settings.THUMBNAIL_MAX_PIXELS)
        work.has_recording = row.has_recording or resource_exists(painting_recording_url(handle=handle, slug=row.slug))
    except ImageError as error:
        return _Outcome(error.message, kind=error.kind, skip_reason=error.skip_reason or "")
    except ThumbnailError as error:
        return _Outcome(error.message, skip_reason=SkipReason.INVALID_IMAGE)
    return work


def _chunk_write(repo, works: list[Work], *, actor: str, result: BatchResult) -> None:
    """Upload the chunk's blobs, then write its records in one applyWrites,
    then write the keys back to MongoDB, then mark the paintings migrated."""
    works = _blobs_upload(repo, works, actor=actor, result=result)
    if not works:
        return
    _notes(works, actor=actor, message=lambda work: f"Writing record {work.rkey} ({work.action}).")
    try:
        refs = repo.apply_writes([pds.Write(work.action, settings.PAINTING_COLLECTION, work.rkey, work.record) for work in works])
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
            _finish(work.row, _Outcome(f"Writing the record failed: {error}", kind=error.kind), actor=actor, result=result)
        return
    _written(works, refs, actor=actor, result=result)


def _single_write(repo, work: Work, *, actor: str, result: BatchResult) -> None:
    try:
        stored = repo.record_get(collection=settings.PAINTING_COLLECTION, rkey=work.rkey)
        if stored is not None and stored.value.get("ref") != work.row.ref:
            raise _Outcome(f"Record key {work.rkey} holds another painting ({stored.value.get('ref')}).", kind=ErrorKind.PERMANENT)
        ref = repo.record_put(collection=settings.PAINTING_COLLECTION, rkey=work.rkey, record=work.record)
    except pds.PdsError as error:
        _finish(work.row, _Outcome(f"Writing the record failed: {error}", kind=error.kind), actor=actor, result=result)
        return
    except _Outcome as outcome:
        _finish(work.row, outcome, actor=actor, result=result)
        return
    _written([work], [ref], actor=actor, result=result)


def _blobs_upload(repo, works: list[Work], *, actor: str, result: BatchResult) -> list[Work]:
    """Upload each thumbnail and build and validate its record. A record
    that does not match the lexicon never reaches the PDS."""
    ready = []
    for work in works:
        row = work.row
        try:
            blob = repo.blob_upload(work.thumbnail.content, mime_type=work.thumbnail.mime_type)
            work.record = _record_for(row, has_recording=work.has_recording, thumbnail=blob)
            record_validate(work.record)
        except pds.PdsError as error:
            _finish(row, _Outcome(f"Uploading the thumbnail failed: {error}", kind=error.kind), actor=actor, result=result)
            continue
        except InvalidRecord as error:
            _finish(row, _Outcome(str(error), skip_reason=SkipReason.INVALID_RECORD), actor=actor, result=result)
            continue
        except ImageError as error:
            _finish(row, _Outcome(error.message, skip_reason=SkipReason.BAD_SLUG), actor=actor, result=result)
            continue
        ready.append(work)
    return ready


def _written(works: list[Work], refs, *, actor: str, result: BatchResult) -> None:
    try:
        source.rkeys_write_back(source.WriteBack(ref=work.row.ref, rkey=work.rkey, uri=ref.uri) for work, ref in zip(works, refs, strict=True))
    except PyMongoError as error:
        # The records exist; the next attempt finds and adopts them.
        for work, ref in zip(works, refs, strict=True):
            _finish(work.row, _Outcome(f"Record {ref.uri} written, but the MongoDB write-back failed: {error}", kind=ErrorKind.TRANSIENT), actor=actor, result=result)
        return
    with transaction.atomic():
        for work, ref in zip(works, refs, strict=True):
            blob = work.record["thumbnail"]
            verb = "Updated" if work.action == "update" else "Wrote"
            _migrated(
                work.row, rkey=work.rkey, uri=ref.uri, cid=ref.cid, blob=blob, thumbnail=work.thumbnail, has_recording=work.has_recording,
                message=f"{verb} record {ref.uri} with a {work.thumbnail.size:,}-byte {work.thumbnail.fallback} thumbnail; MongoDB has atproto.rkey.",
                actor=actor,
            )
    result.migrated += len(works)


def _migrated(row, *, rkey, uri, cid, blob, message, actor, thumbnail=None, has_recording=None) -> None:
    fields = {
        "rkey": rkey, "record_uri": uri, "record_cid": cid, "migrated_at": timezone.now(),
        "last_error": "", "error_kind": "", "skip_reason": "", "skip_detail": "", "claimed_by": "",
        "thumbnail_cid": _blob_cid(blob),
    }
    if thumbnail is not None:
        fields.update(thumbnail_size=thumbnail.size, thumbnail_mime=thumbnail.mime_type, thumbnail_fallback=thumbnail.fallback)
    if has_recording is not None:
        fields["has_recording"] = has_recording
    painting_transition(row, to=Status.MIGRATED, actor=actor, message=message, **fields)


def _blob_cid(blob) -> str:
    if isinstance(blob, dict):
        return (blob.get("ref") or {}).get("$link", "")
    return getattr(getattr(blob, "ref", None), "link", "") or ""


def _finish(row: PaintingMigration, outcome: _Outcome, *, actor: str, result: BatchResult) -> None:
    """End a painting's attempt as skipped (with its reason) or failed
    (with its error, retryable)."""
    if outcome.skip_reason:
        painting_transition(
            row, to=Status.SKIPPED, actor=actor, message=f"Skipped: {outcome.message}",
            skip_reason=outcome.skip_reason, skip_detail=outcome.message[:500], claimed_by="",
        )
        result.skipped[outcome.skip_reason] += 1
    else:
        kind = outcome.kind or ErrorKind.TRANSIENT
        painting_transition(
            row, to=Status.FAILED, actor=actor, message=f"Failed ({kind}): {outcome.message}",
            last_error=outcome.message, error_kind=kind, claimed_by="",
        )
        result.failed[error_signature(outcome.message)] += 1


def _notes(works: list[Work], *, actor: str, message) -> None:
    MigrationEvent.objects.bulk_create(
        MigrationEvent(painting=work.row, from_status=work.row.status, to_status=work.row.status, message=message(work), actor=actor)
        for work in works
    )


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- Dry run ------------------------------------------------------------------


@dataclass
class Preview:
    """What migrating one painting would do, computed by the real code path
    with every external write switched off."""

    painting: PaintingMigration
    outcome: str  # "migrate", "skip" or "fail"
    message: str
    record: dict | None = None
    thumbnail: Thumbnail | None = None
    problems: list[str] = field(default_factory=list)
    rkey: str = ""


def paintings_preview(paintings: Iterable[PaintingMigration]) -> list[Preview]:
    """Dry-run each painting: fetch its image, make the thumbnail, build and
    validate the record. Writes nothing anywhere (no PDS, no MongoDB, no
    state). The thumbnail's blob reference carries the CID the PDS would
    give it."""
    works, previews = [], {}
    for painting in paintings:
        try:
            works.append(_prepare(painting))
        except _Outcome as outcome:
            previews[painting.pk] = _preview_of(painting, outcome)
    with ThreadPoolExecutor(max_workers=settings.THUMBNAIL_THREADS) as pool:
        for work, made in zip(works, pool.map(_thumbnail_for, works), strict=True):
            if isinstance(made, _Outcome):
                previews[work.row.pk] = _preview_of(work.row, made)
            else:
                previews[work.row.pk] = _record_preview(work)
    return list(previews.values())


def _preview_of(painting: PaintingMigration, outcome: _Outcome) -> Preview:
    verb = "skip" if outcome.skip_reason else "fail"
    return Preview(painting=painting, outcome=verb, message=outcome.message)


def _record_preview(work: Work) -> Preview:
    row, thumbnail = work.row, work.thumbnail
    blob = {"$type": "blob", "ref": {"$link": blob_cid(thumbnail.content)}, "mimeType": thumbnail.mime_type, "size": thumbnail.size}
    try:
        record = _record_for(row, has_recording=work.has_recording, thumbnail=blob)
    except ImageError as error:
        return Preview(painting=row, outcome="skip", message=error.message, thumbnail=thumbnail, rkey=work.rkey)
    try:
        record_validate(record)
    except InvalidRecord as error:
        return Preview(painting=row, outcome="skip", message="The record does not match the lexicon.", record=record, thumbnail=thumbnail, problems=error.problems, rkey=work.rkey)
    verb = "update" if row.rkey else "create"
    message = f"Would {verb} {settings.PAINTING_COLLECTION}/{work.rkey} with a {thumbnail.size:,}-byte {thumbnail.fallback} thumbnail."
    return Preview(painting=row, outcome="migrate", message=message, record=record, thumbnail=thumbnail, rkey=work.rkey)


def blob_cid(content: bytes) -> str:
    """The CID a PDS gives a blob: CIDv1, raw codec, sha-256, base32."""
    digest = hashlib.sha256(content).digest()
    return "b" + base64.b32encode(bytes([0x01, 0x55, 0x12, 0x20]) + digest).decode().lower().rstrip("=")
