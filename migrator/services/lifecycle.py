"""Life after the backfill: documents deleted from MongoDB (and restored),
the tripwire that holds a mass removal for a person, staff take-downs and
republishing, and the undo of a run.

Nothing here talks to the PDS: each service changes rows (one audited
transition each) so that the engine removes or rewrites their records, the
one place records are written. A removal the engine makes is said in the
painting's audit trail with the record's URI.

Deletions are found at every full seed (``seed_paintings``, the backfill's
seed, live sync's hourly re-read): the state table's paintings are looked
up by ``_id`` in MongoDB, a batch at a time, and those MongoDB no longer
has are gone. When one seed finds more gone than REMOVAL_TRIPWIRE_MIN and
REMOVAL_TRIPWIRE_PERCENT allow, it removes none: a RemovalHold opens, staff
are alerted, and the removals wait for a person's confirmation (or for
MongoDB to have the documents again, which clears the hold by itself).
"""

import hashlib
import logging
import math
import re
import secrets
import time
from collections.abc import Iterator
from itertools import chain, pairwise
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Count, Max, Min, Q, QuerySet
from django.utils import timezone

from migrator import alerts, pds, source
from migrator.kinds import KINDS, PAINTING, RecordKind, kind_for
from migrator.lexicon import lexicons_load
from migrator.models import Transfer, RemovalHold, SkipReason, Status
from migrator.services.state import transfer_note, transfers_transition

log = logging.getLogger("migrator.services.lifecycle")

OBJECT_ID_HEX = re.compile(r"[0-9a-f]{24}")  # a ref as MongoDB's ObjectIds are read
SAMPLE_SIZE = 200  # known documents looked for in MongoDB before trusting it
EXAMPLES = 10
# Statuses a document whose record may exist is sent back to pending from,
# for the engine to remove the record (queued and running ones meet the
# change at their claim or their write).
SETTLED = (Status.MIGRATED, Status.FAILED, Status.WAITING, Status.SKIPPED)

_verified: dict[tuple, float] = {}


# -- The database guard ------------------------------------------------------


def mongodb_verify(*, cache_seconds: float = 0, kind: RecordKind) -> None:
    """Refuse to go on when MONGODB_DB is not the database the migration
    came from: no collection of ``kind`` (``paintings``), or none of a
    sample of the documents of it the state table knows. Every command and task
    that reads MongoDB calls this first. Raises source.WrongDatabase
    (nothing has been changed), or PyMongoError when MongoDB is out of reach.

    ``cache_seconds``: a check that passed that recently in this process is
    not made again (the engine checks once per batch).
    """
    key = (settings.MONGODB_URI, settings.MONGODB_DB, settings.DATABASES["default"]["NAME"], kind.name)
    if cache_seconds and time.monotonic() - _verified.get(key, -math.inf) < cache_seconds:
        return
    source.database_check(known_refs=known_sample(kind=kind), kind=kind)
    _verified[key] = time.monotonic()


def kind_in_use(kind: RecordKind) -> bool:
    """Whether MongoDB has ``kind``'s collection or the state table has rows
    of it. A kind this database never had is left out of ``all`` and of
    live sync; a collection gone missing under known rows is refused."""
    return kind is PAINTING or Transfer.objects.filter(kind=kind.name).exists() or source.collection_exists(kind)


def known_sample(*, kind: RecordKind) -> list[str]:
    """A sample of the documents of ``kind`` the state table holds as
    present in MongoDB: the newest and a random spread, so that documents
    legitimately deleted together (an erased user's) never make up all of it."""
    present = _present_rows(kind).filter(ref__regex=r"^[0-9a-f]{24}$")
    newest = list(present.order_by("-id").values_list("ref", flat=True)[: SAMPLE_SIZE // 2])
    spread = list(present.order_by("?").values_list("ref", flat=True)[: SAMPLE_SIZE // 2])
    return list(dict.fromkeys(newest + spread))


def _present_rows(kind: RecordKind) -> QuerySet:
    """Rows of ``kind`` the console takes MongoDB to have."""
    return Transfer.objects.filter(kind=kind.name, gone_since=None).exclude(status=Status.SKIPPED, skip_reason=SkipReason.GONE)


# -- Deletions and the tripwire ---------------------------------------------


@dataclass
class GoneReport:
    """What one look for deleted documents found and did."""

    missing: int = 0  # documents MongoDB no longer has, newly found
    known: int = 0
    bound: int = 0
    removing: int = 0  # let through: their records are removed
    held: bool = False  # more than the bound: none removed, a hold is open
    hold_cleared: bool = False  # an open hold cleared itself
    examples: list = field(default_factory=list)


def removal_bound(known: int) -> int:
    """The most removals one seed may make without a person: the larger of
    REMOVAL_TRIPWIRE_MIN and REMOVAL_TRIPWIRE_PERCENT of the known documents."""
    return max(settings.REMOVAL_TRIPWIRE_MIN, math.floor(known * settings.REMOVAL_TRIPWIRE_PERCENT / 100))


def transfers_missing(*, batch_size: int = 1000, kind: RecordKind) -> Iterator[list[Transfer]]:
    """The rows of documents MongoDB no longer has, in batches. The rows are
    read in the order of their ref, a batch at a time, and merged with the
    ids MongoDB has, read once in the same order: one pass over each, so the
    cost grows with the collection, not with the collection times the
    batches (an ``$in`` per batch is a scan each on a server without an
    ``_id`` index), and memory stays flat. Rows staff unpublished are left
    out: they have no record to remove."""
    rows = _missing_rows(kind).order_by("ref")
    present = source.refs_in_order(kind=kind)
    current, previous, last = next(present, None), "", ""
    while True:
        batch = list(rows.filter(ref__gt=last)[:batch_size])
        if not batch:
            return
        last = batch[-1].ref
        missing, unordered = [], []
        for row in batch:
            if not OBJECT_ID_HEX.fullmatch(row.ref) or row.ref < previous:
                # Not a ref MongoDB's ids are read as, or the database orders
                # refs otherwise than their bytes: asked for by id instead.
                unordered.append(row)
                continue
            previous = row.ref
            while current is not None and current < row.ref:
                current = next(present, None)
            if current != row.ref:
                missing.append(row)
        if unordered:
            found = source.refs_present((row.ref for row in unordered), kind=kind)
            missing += [row for row in unordered if row.ref not in found and source.is_object_id(row.ref)]
        if missing:
            yield missing


class MissingFinder:
    """The rows of documents MongoDB no longer has, found as a full seed
    reads every document of ``kind`` in ``_id`` order (``read`` each batch,
    then ``missing_ids``), with no second read of the collection: a batch's
    ObjectIds bound a range of refs, and a row in that range whose ref the
    batch lacks is missing, unless MongoDB has its document when asked at
    the end (one inserted behind the read). Each batch costs one indexed
    range read of the state table; what is kept is the rows not found. Read
    out of ``_id`` order, it falls back to ``transfers_missing``."""

    def __init__(self, *, kind: RecordKind) -> None:
        self.kind = kind
        self.read_to = ""  # the highest ObjectId read so far, as hex
        self.candidates: list[tuple[int, str]] = []  # (row id, ref) not read
        self.in_order = True

    def read(self, refs: list[str]) -> None:
        """``refs``: the hex of the ObjectIds of one batch of documents, as read."""
        if not refs or not self.in_order:
            return
        if any(before >= after for before, after in pairwise([self.read_to, *refs])):
            self.in_order = False
            return
        rows = _missing_rows(self.kind).filter(ref__gt=self.read_to, ref__lte=refs[-1]).order_by("ref").values_list("id", "ref")
        seen = set(refs)
        self.candidates += [(row_id, ref) for row_id, ref in rows if ref not in seen]
        self.read_to = refs[-1]

    def missing_ids(self) -> list[int]:
        if not self.in_order:
            return [row.id for batch in transfers_missing(kind=self.kind) for row in batch]
        after = _missing_rows(self.kind).filter(ref__gt=self.read_to).order_by("ref").values_list("id", "ref").iterator(chunk_size=1000)
        candidates = [(row_id, ref) for row_id, ref in chain(self.candidates, after) if OBJECT_ID_HEX.fullmatch(ref)]
        missing = []
        for start in range(0, len(candidates), 1000):
            chunk = candidates[start : start + 1000]
            present = source.refs_present((ref for _, ref in chunk), kind=self.kind)
            missing += [row_id for row_id, ref in chunk if ref not in present]
        return missing


def _missing_rows(kind: RecordKind) -> QuerySet:
    """The rows that can be found missing: present ones staff did not
    unpublish (those have no record to remove)."""
    return _present_rows(kind).filter(unpublished_at=None)


def documents_detect_gone(*, actor: str, kind: RecordKind, finder: MissingFinder) -> GoneReport:
    """After a full seed: take the documents deleted from MongoDB that
    ``finder`` found while the seed read the others, and let their removal
    through, unless there are more than ``removal_bound``; then remove none
    and open (or update) the RemovalHold. An open hold whose documents
    MongoDB has again clears by itself."""
    report = GoneReport(known=_present_rows(kind).count())
    report.bound = removal_bound(report.known)
    missing_ids = finder.missing_ids()
    report.examples = [_example(row) for row in Transfer.objects.filter(id__in=missing_ids[:EXAMPLES]).order_by("ref")]
    report.missing = len(missing_ids)
    hold = removal_hold(kind=kind)
    if report.missing > report.bound:
        report.held = True
        _hold_open(hold, report, kind=kind)
        return report
    if hold is not None:
        _hold_clear(hold, by="", how=f"MongoDB has the documents again: {report.missing} missing now, within the bound of {report.bound}.")
        report.hold_cleared = True
    report.removing = transfers_mark_gone(Transfer.objects.filter(id__in=missing_ids), actor=actor, kind=kind)
    return report


def _example(row: Transfer) -> dict:
    return {"ref": row.ref, "document": str(row), "status": row.status, "uri": row.record_uri}


def _tripwire(kind: RecordKind) -> str:
    """The alert key of ``kind``'s tripwire."""
    return f"tripwire:{kind.plural}"


def _hold_open(hold: RemovalHold | None, report: GoneReport, *, kind: RecordKind) -> None:
    fields = {"count": report.missing, "known": report.known, "bound": report.bound, "examples": report.examples, "checked_at": timezone.now()}
    if hold is None:
        hold = RemovalHold.objects.create(kind=kind.name, database=settings.MONGODB_DB[:255], **fields)
        log.warning("Removal hold: %d %s are gone from MongoDB (%s), more than %d; none removed.", report.missing, kind.plural, settings.MONGODB_DB, report.bound)
    else:
        RemovalHold.objects.filter(pk=hold.pk).update(**fields)
    alert(
        _tripwire(kind),
        f"Removal held: {report.missing} {kind.plural} gone from MongoDB",
        f"A seed found {report.missing} of {report.known} {kind.plural} gone from MongoDB database {settings.MONGODB_DB!r}, more than the "
        f"{report.bound} it may remove at once, so it removed none. Confirm on the dashboard if they were really deleted, or restore them "
        "(the hold then clears by itself). Examples: " + ", ".join(example["document"] for example in report.examples[:5]),
    )


def _hold_clear(hold: RemovalHold, *, by: str, how: str) -> None:
    RemovalHold.objects.filter(pk=hold.pk).update(cleared_at=timezone.now(), cleared_by=by[:150], cleared_how=how[:255])
    alert_clear(_tripwire(kind_for(hold.kind)))


def removal_hold(*, kind: RecordKind | None = None) -> RemovalHold | None:
    """The open hold of ``kind`` (of any kind when None), or None."""
    holds = RemovalHold.objects.filter(cleared_at=None)
    return (holds.filter(kind=kind.name) if kind else holds).first()


def removal_holds() -> list[RemovalHold]:
    """Every open hold, one per kind at most."""
    return list(RemovalHold.objects.filter(cleared_at=None))


def removals_digest(ids: list[int]) -> str:
    """A short digest of a set of rows: what a person saw when they confirm."""
    return hashlib.blake2b(",".join(map(str, sorted(ids))).encode(), digest_size=8).hexdigest()


@dataclass
class HoldConfirmation:
    removing: int
    changed: bool = False  # what is missing now differs from what was shown


def removal_hold_confirm(*, digest: str, actor: str, kind: RecordKind) -> HoldConfirmation:
    """A person with the run permission confirms the held removals of
    ``kind`` they were shown (``digest`` of them, from ``removals_digest``):
    looked up in MongoDB again, and removed only if they are still the same
    documents."""
    ids = [row.id for batch in transfers_missing(kind=kind) for row in batch]
    if removals_digest(ids) != digest:
        return HoldConfirmation(removing=0, changed=True)
    hold = removal_hold(kind=kind)
    removing = transfers_mark_gone(Transfer.objects.filter(id__in=ids), actor=actor, confirmed=True, kind=kind)
    if hold is not None:
        _hold_clear(hold, by=actor, how=f"Confirmed by {actor}: {len(ids)} {kind.plural} removed.")
    return HoldConfirmation(removing=removing)


def transfers_mark_gone(transfers: QuerySet, *, actor: str, confirmed: bool = False, kind: RecordKind) -> int:
    """The documents of ``transfers`` are gone from MongoDB: those that never
    had a record are skipped at once; the others go to the engine, which
    removes their record (it looks MongoDB up once more first). Returns how
    many were marked."""
    now = timezone.now()
    ids = list(transfers.filter(gone_since=None).values_list("id", flat=True))
    if not ids:
        return 0
    who = f" (removal confirmed by {actor})" if confirmed else ""
    rows = Transfer.objects.filter(id__in=ids)
    rows.update(gone_since=now)
    _without_record(
        rows, actor=actor, reason=SkipReason.GONE, detail=f"MongoDB no longer has this {kind.name}; it had no record.",
        message=f"MongoDB no longer has this {kind.name}; it had no record{who}.",
        note=lambda row: f"MongoDB no longer has this {kind.name} (it was skipped: {row.skip_detail}); it had no record{who}.",
        to_engine=f"MongoDB no longer has this {kind.name}; its record will be removed{who}.",
    )  # fmt: skip
    return len(ids)


# -- Take-downs, republishing and undo ---------------------------------------


def transfers_unpublish(transfers: QuerySet, *, actor: str, reason: str) -> list[int]:
    """Take documents down: their records are removed (by the engine) and
    ``atproto.rkey`` cleared, and they stay unpublished across seeds and
    syncs until ``transfers_republish``. ``reason`` is required. Returns
    the ids that now wait for the engine (queued and running ones meet
    the take-down at their claim or their write)."""
    reason = " ".join(reason.split())[:500]
    if not reason:
        raise ValueError("A take-down needs a reason.")
    now = timezone.now()
    rows = transfers.filter(unpublished_at=None)
    ids = list(rows.values_list("id", flat=True))
    if not ids:
        return []
    Transfer.objects.filter(id__in=ids).update(unpublished_at=now, unpublished_by=actor[:150], unpublished_reason=reason)
    detail = f"Taken down by {actor}: {reason}"
    return _without_record(
        Transfer.objects.filter(id__in=ids), actor=actor, reason=SkipReason.TAKEN_DOWN, detail=detail[:500],
        message=f"{detail} (it had no record).", note=lambda row: f"{detail} (it had no record).",
        to_engine=f"{detail}. Its record will be removed and the key MongoDB keeps of it cleared.",
    )  # fmt: skip


def _without_record(rows: QuerySet, *, actor: str, reason: str, detail: str, message: str, note, to_engine: str) -> list[int]:
    """End ``rows`` as documents that must have no record (gone, taken
    down): those never written are skipped for ``reason`` at once (already
    skipped ones take the reason, with ``note(row)`` in their trail); the
    others go to the engine, which removes their record. Returns the ids
    that now wait for the engine."""
    never_written = list(rows.filter(rkey="", attempts=0).exclude(status__in=[Status.QUEUED, Status.RUNNING]))
    transfers_transition(
        Transfer.objects.filter(id__in=[row.id for row in never_written]), from_statuses=[Status.PENDING, Status.FAILED, Status.WAITING],
        to=Status.SKIPPED, actor=actor, message=message, skip_reason=reason, skip_detail=detail,
    )  # fmt: skip
    for row in never_written:
        if row.status == Status.SKIPPED:
            Transfer.objects.filter(pk=row.pk).update(skip_reason=reason, skip_detail=detail)
            transfer_note(row, actor=actor, message=note(row))
    return _to_engine(rows.exclude(id__in=[row.id for row in never_written]), actor=actor, message=to_engine)


def _to_engine(rows: QuerySet, *, actor: str, message: str) -> list[int]:
    """Send documents whose record may exist to the engine (back to pending),
    with ``message`` in each one's trail. Returns the ids that now wait for
    it, queued and running ones included (they meet the change at their
    claim or their write)."""
    moved = transfers_transition(rows, from_statuses=SETTLED, to=Status.PENDING, actor=actor, message=message)
    waiting = list(rows.filter(status__in=[Status.PENDING, Status.QUEUED, Status.RUNNING]).exclude(id__in=moved))
    for row in waiting:
        transfer_note(row, actor=actor, message=message)
    return moved + [row.id for row in waiting]


def transfers_republish(transfers: QuerySet, *, actor: str) -> list[int]:
    """Undo take-downs: the documents go back to pending and are migrated
    again under the same record key. Returns their ids."""
    rows = transfers.exclude(unpublished_at=None)
    ids = list(rows.values_list("id", flat=True))
    Transfer.objects.filter(id__in=ids).update(unpublished_at=None, unpublished_by="", unpublished_reason="")
    moved = transfers_transition(
        Transfer.objects.filter(id__in=ids, skip_reason=SkipReason.TAKEN_DOWN), from_statuses=[Status.SKIPPED], to=Status.PENDING,
        actor=actor, message=f"Republished by {actor}: it will be migrated again under the same record key.", skip_reason="", skip_detail="",
    )  # fmt: skip
    for row in Transfer.objects.filter(id__in=set(ids) - set(moved)):
        transfer_note(row, actor=actor, message=f"Republished by {actor}.")
    return ids


def run_label(actor: str) -> str:
    """The name a run's writes are kept under (``written_by``): who started
    it, when, and a few random characters that tell apart two runs started
    in the same second, e.g. "command:backfill_paintings 2026-12-01T08:30:12Z #3fa1"."""
    return f"{actor[:120]} {timezone.now():%Y-%m-%dT%H:%M:%SZ} #{secrets.token_hex(2)}"


# What ``written_by`` says of a record the state table learned of only
# through MongoDB's key (a rebuilt state table): which run wrote it is lost.
UNKNOWN_RUN = "unknown run"


def unknown_run() -> str:
    """The ``written_by`` of a record found through MongoDB's key alone:
    "unknown run (found by the seed of 2026-12-02)"."""
    return f"{UNKNOWN_RUN} (found by the seed of {timezone.now():%Y-%m-%d})"


def transfers_of_unknown_runs() -> QuerySet:
    """The documents whose record on the PDS the state table learned of
    only through MongoDB's key: which run wrote them is not known."""
    return Transfer.objects.filter(status=Status.MIGRATED, unpublished_at=None, written_by__startswith=UNKNOWN_RUN)


def transfers_written_by(*, run: str = "", actor: str = "", since=None, until=None) -> QuerySet:
    """The documents whose record on the PDS was written by one run
    (``run``, a ``written_by`` label), or by ``actor``'s runs in a time
    window (``since``/``until`` bound ``migrated_at``)."""
    if not run and not actor:
        raise ValueError("Name a run, or an actor.")
    rows = Transfer.objects.filter(status=Status.MIGRATED, unpublished_at=None)
    if run:
        rows = rows.filter(written_by=run)
    if actor:
        rows = rows.filter(Q(written_by=actor) | Q(written_by__startswith=actor + " "))
    if since is not None:
        rows = rows.filter(migrated_at__gte=since)
    if until is not None:
        rows = rows.filter(migrated_at__lte=until)
    return rows


# -- Records of an older shape ----------------------------------------------


def transfers_stale_shape(*, kind: RecordKind) -> QuerySet:
    """Migrated documents whose record was written in another shape than the
    console would write now (a new lexicon, a change to how a field is
    built, a new USER_MEDIA_URL): stale though MongoDB did not change."""
    return Transfer.objects.filter(_stale_shape(kind))


def _stale_shape(kind: RecordKind) -> Q:
    return Q(kind=kind.name, status=Status.MIGRATED) & ~Q(record_shape=kind.record_shape())


@dataclass(frozen=True)
class AfterBackfill:
    """How many documents life after the backfill touched: records of an
    older shape (by kind), documents staff took down, documents gone from
    MongoDB."""

    stale_shape: dict[str, int]
    taken_down: int
    gone: int


def after_backfill_counts() -> AfterBackfill:
    """``AfterBackfill`` in one query (the dashboard's)."""
    stale = {kind.name: Count("id", filter=_stale_shape(kind)) for kind in KINDS.values()}
    counts = Transfer.objects.aggregate(
        **{f"stale_{name}": count for name, count in stale.items()},
        taken_down=Count("id", filter=Q(unpublished_at__isnull=False)),
        gone=Count("id", filter=Q(status=Status.SKIPPED, skip_reason=SkipReason.GONE)),
    )
    return AfterBackfill(stale_shape={name: counts[f"stale_{name}"] for name in stale}, taken_down=counts["taken_down"], gone=counts["gone"])


class LexiconNotPublished(Exception):
    """The lexicon in lexicons/ is not the one published: records of its
    shape must wait for ``manage.py deploy_lexicon``."""


def lexicon_published_check(*, kind: RecordKind) -> None:
    """Raise LexiconNotPublished unless the painting lexicon the console
    validates against is the one published on the PDS (a public read), so
    that no record is rewritten to a shape the network cannot look up."""
    local = lexicons_load()[kind.nsid]
    did = pds.account_did(settings.LEXICON_ACCOUNT_HANDLE)
    stored = pds.public_record_get(did=did, collection="com.atproto.lexicon.schema", rkey=kind.nsid) if did else None
    published = {key: value for key, value in stored.value.items() if key != "$type"} if stored else None
    if published != local:
        raise LexiconNotPublished(
            f"The {kind.nsid} lexicon in lexicons/ is not the one published by {settings.LEXICON_ACCOUNT_HANDLE}: "
            "run manage.py deploy_lexicon first (it refuses a breaking change)."
        )


def transfers_reshape(*, actor: str, limit: int | None = None, kind: RecordKind) -> list[int]:
    """Staff confirmed: every migrated document whose record is of an older
    shape goes back to pending, to be rewritten in place under its key
    (an update: 2 write points, within the rate limits), keeping the
    thumbnail blob it holds when its image is the same. Raises
    LexiconNotPublished (changing nothing) when the lexicon is not published
    yet. Returns the ids."""
    lexicon_published_check(kind=kind)
    return transfers_transition(
        transfers_stale_shape(kind=kind), from_statuses=[Status.MIGRATED], to=Status.PENDING, actor=actor, limit=limit,
        message="Its record was written in an older shape (lexicon, media URL or how a field is built); it will be rewritten under the same key.",
    )  # fmt: skip


# -- What staff see ----------------------------------------------------------


@dataclass(frozen=True)
class RunWritten:
    """One run's records still on the PDS: what "undo a run" lists."""

    run: str
    count: int
    first: object
    last: object


def runs_recent(*, limit: int = 20) -> list[RunWritten]:
    """The runs whose records are on the PDS now, the latest first."""
    rows = (
        Transfer.objects.filter(status=Status.MIGRATED, unpublished_at=None).exclude(written_by="")
        .values("written_by").annotate(count=Count("id"), first=Min("migrated_at"), last=Max("migrated_at")).order_by("-last")[:limit]
    )  # fmt: skip
    return [RunWritten(row["written_by"], row["count"], row["first"], row["last"]) for row in rows]


@dataclass(frozen=True)
class ShapeExample:
    transfer: Transfer
    before: dict | None  # as the PDS holds it (None: it could not be read)
    after: dict


def stale_shape_example(*, kind: RecordKind) -> ShapeExample | None:
    """One record of an older shape, as the PDS holds it and as the console
    would rewrite it (keeping its thumbnail), or None when none is stale."""
    row = transfers_stale_shape(kind=kind).order_by("id").first()
    if row is None:
        return None
    try:
        stored = pds.public_record_get(did=row.account_did, collection=kind.nsid, rkey=row.rkey)
    except pds.PdsError:
        stored = None
    before = stored.value if stored else None
    thumbnail = None if not kind.blob_field else (before or {}).get(kind.blob_field) or {"$type": "blob", "ref": {"$link": row.blob_cid}, "mimeType": row.blob_mime, "size": row.blob_size or 0}
    has_recording = row.has_recording or kind.recording_in(before or {})
    try:
        after = kind.record_from_row(row, has_recording=has_recording, blob=thumbnail)
    except Exception as error:  # noqa: BLE001 - shown, not raised: the page must open
        after = {"error": f"{type(error).__name__}: the record cannot be built from this row"}
    return ShapeExample(transfer=row, before=before, after=after)


# -- Alerts ------------------------------------------------------------------


def alert(key: str, subject: str, message: str) -> None:
    """Tell staff (mail_admins and the chat webhook), once per condition."""
    alerts.alert_send(subject=subject, message=message, key=key)


def alert_clear(key: str) -> None:
    alerts.alert_clear(key=key)
