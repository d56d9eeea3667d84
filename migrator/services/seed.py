"""Seeding: mirror MongoDB's documents of a kind
into the state table.

Idempotent and cheap to re-run: documents are read in batches, compared with
their rows, and only differences are written (bulk create / bulk update).
A migrated row keeps its rkey and history whatever MongoDB says later.

Each row carries the fingerprint of the fields its record is made of
(``source_fingerprint``); the engine stores, with the record it wrote, the
fingerprint it wrote it from (``record_fingerprint``). A migrated row whose
two fingerprints differ has a stale record: ``transfers_mark_stale`` puts
it back to pending, and the engine rewrites the record under the same key.
Whatever order edits, seeds and runs happen in, the record converges to
MongoDB's current document.

Facts the engine learned are kept across seeds: a recording found on
storage (until the slug or handle it was found under changes) and the DID
an account logged in as (until the owner changes).

How each field MongoDB holds is read (anything else skips the painting with
the reason given, and the skip lifts when MongoDB is fixed):

- ``_id``: an ObjectId. Anything else: skipped, "`_id` is not an ObjectId"
  (no record key can be made from it and the write-back could not find it).
- ``user``: missing or null: a guest painting (the anonymous account); a
  non-empty string: the owner's auth0 sub; anything else (a number, an
  ObjectId, ""): skipped, "`user` is not a user id", never re-homed as a guest.
- ``nuked``: true, false, missing or null. Anything else ("yes", 1): skipped,
  "`nuked` is not true or false", since guessing could publish a nuked painting.
- ``slug``: text of digits and dots (guest slugs "image:recording"), at
  most the lexicon's 64 characters. Missing, not text, too long or unfit for
  a URL: skipped with that reason.
- ``code``: non-empty text of at most 10 characters; a code shared by
  several paintings stays with the oldest, the others are skipped.
- ``when``: a date from 1970 to 2255 (what a record key can hold); anything
  else, including dates outside Python's range: skipped.
- ``atproto.rkey``/``uri``: text; other types, and text no record key or
  at:// URI of ours can be (over 32 or 512 characters, other characters),
  read as absent.
- ``@handles.handle``: non-empty text, else the owner has no handle (skipped).
- ``users.atproto``: ``handle`` and ``password`` as text, ``did`` text or
  absent. Missing: skipped, no account; present but unusable: skipped with
  what is wrong (its type, never its value). A user with no ``did`` whose
  handle and password the PDS refuses is skipped as an incomplete account.
"""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bson import ObjectId
from django.db import transaction
from pymongo.errors import BulkWriteError
from django.utils import timezone

from migrator import source
from migrator.kinds import Problem, RecordKind
from migrator.models import DATA_REASONS, Account, Transfer, SkipReason, Status
from django.db.models import F

from migrator.services.lifecycle import GoneReport, MissingFinder, mongodb_verify, documents_detect_gone, unknown_run
from migrator.services.state import events_add, transfer_note, transfer_transition, transfers_transition

# The owner of a painting whose ``user`` names no one: not "" (which means a
# guest painting), so it is never counted or migrated as one.
INVALID_OWNER = "(invalid user)"
# The most owners one seed keeps the handles and credentials of (about 980
# have paintings; each takes well under 1 KB); past it, it forgets them and
# looks them up again.
OWNERS_KEPT = 50_000
MIRRORED_FIELDS = (
    "label", "content", "owner", "owner_handle", "account_did", "when", "nuked", "source_fingerprint", "gone_since",
)  # fmt: skip
# Reasons a document whose record may exist is skipped for only after the
# engine removed that record: it must not stay published.
UNPUBLISHING_REASONS = frozenset({SkipReason.NUKED, SkipReason.TAKEN_DOWN})


@dataclass
class SeedReport:
    seen: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    anonymous: int = 0
    user_paintings: int = 0
    paintings_by_owner: Counter = field(default_factory=Counter)
    owners_with_account: set = field(default_factory=set)
    owner_handles: dict = field(default_factory=dict)
    problems: Counter = field(default_factory=Counter)
    keys_restored: int = 0  # keys MongoDB had lost, written back from the state table
    last_ref: str = ""
    gone: GoneReport | None = None  # a full seed's look for deleted documents

    @property
    def users(self) -> int:
        return len(self.paintings_by_owner)

    @property
    def users_with_account(self) -> int:
        return len(self.owners_with_account)

    def top_users(self, count: int = 5) -> list[tuple[str, int]]:
        return [(self.owner_handles.get(owner, owner), n) for owner, n in self.paintings_by_owner.most_common(count)]


@dataclass(frozen=True)
class Desired:
    """What a row should hold after this seed, and why it cannot migrate."""

    values: dict
    problem: Problem | None
    source: Any  # what the kind's ``read`` made of the document
    kind: RecordKind


def documents_seed(
    *,
    actor: str,
    batch_size: int = 1000,
    on_batch: Callable[[SeedReport], None] | None = None,
    after_ref: str | None = None,
    refs: list[str] | None = None,
    kind: RecordKind,
) -> SeedReport:
    """Upsert the state table from MongoDB and return the counts.

    ``after_ref`` reads only documents inserted after that ObjectId (live
    sync); ``refs`` only those documents (the upload hook). A full seed
    (neither) also finds the documents deleted from MongoDB since, and lets
    their removal through within the tripwire (``report.gone``).

    ``kind`` says what the documents are and how each is read, judged and
    fingerprinted.

    Raises source.WrongDatabase, changing nothing, when MONGODB_DB is not
    the database the state table came from.
    """
    mongodb_verify(kind=kind)
    report = SeedReport()
    # A seed of chosen documents (the upload hook) looks up only their codes,
    # so a call costs work proportional to its documents, not the collection.
    duplicates = None if refs is not None else source.duplicate_codes(kind=kind)
    anonymous_did = Account.objects.filter(is_anonymous=True).values_list("did", flat=True).first() or ""
    owners = Owners()
    # A full seed reads every document: it meets most users, and what it did
    # not read is what MongoDB deleted.
    finder = MissingFinder(kind=kind) if refs is None and after_ref is None else None
    if finder is not None:
        owners.learn_everyone(kind=kind)
    for documents in source.documents_batches(batch_size=batch_size, after_ref=after_ref, refs=refs, kind=kind):
        if refs is not None:
            values = [value for document in documents if isinstance(value := document.get(kind.unique_field or ""), str)]
            duplicates = source.duplicate_codes(codes=values, kind=kind)
        _seed_batch(documents, duplicates=duplicates, anonymous_did=anonymous_did, owners=owners, actor=actor, report=report, kind=kind)
        object_ids = [str(document["_id"]) for document in documents if isinstance(document["_id"], ObjectId)]
        if finder is not None:
            finder.read(object_ids)
        report.last_ref = max([report.last_ref, *object_ids])
        if on_batch:
            on_batch(report)
    transfers_mark_stale(actor=actor, refs=refs, kind=kind)
    if after_ref is None:
        blobs_appeared(actor=actor, refs=refs, kind=kind)
    if finder is not None:
        report.gone = documents_detect_gone(actor=actor, kind=kind, finder=finder)
    return report


def blobs_appeared(*, actor: str, refs: list[str] | None = None, kind: RecordKind) -> int:
    """Put back to pending the rows of ``kind`` skipped because their blob's
    source did not exist yet (a tape's MP4 before the oven made it) whose
    source exists now. Returns how many. A kind without such a skip has none."""
    if kind.waits_for_blob is None or kind.blob_ready is None:
        return 0
    waiting = Transfer.objects.filter(kind=kind.name, status=Status.SKIPPED, skip_reason=kind.waits_for_blob)
    if refs is not None:
        waiting = waiting.filter(ref__in=refs)
    ready = [row.pk for row in waiting.iterator(chunk_size=200) if kind.blob_ready(row)]
    return len(
        transfers_transition(
            Transfer.objects.filter(pk__in=ready), from_statuses=[Status.SKIPPED], to=Status.PENDING, actor=actor,
            message=f"The {kind.blob_field} now exists on the media storage: no longer skipped.", skip_reason="", skip_detail="",
        )  # fmt: skip
    )


def gone_lines(gone: GoneReport | None, *, kind: RecordKind) -> list[str]:
    """What a command says of a full seed's look for deleted documents."""
    if gone is None:
        return []
    if gone.held:
        return [
            f"  HELD: {gone.missing} {kind.plural} are gone from MongoDB, more than the {gone.bound} one seed may remove; none removed.",
            "        Confirm on the dashboard (Removals held) if they were deleted, or restore them: the hold then clears by itself.",
        ]
    lines = [f"  gone from MongoDB: {gone.removing} (their records are removed)"] if gone.removing else []
    if gone.hold_cleared:
        lines.append("  the removal hold cleared by itself: MongoDB has the documents again.")
    return lines


def documents_unseeded(*, batch_size: int = 1000, kind: RecordKind, **filters) -> list[Transfer]:
    """The rows a seed would add for MongoDB's documents that are not in the
    state table yet, unsaved, with the status a seed would give them: what a
    dry run previews on a console that has not seeded. Takes the filters of
    ``source.documents_query``. Writes nothing anywhere."""
    duplicates = source.duplicate_codes(kind=kind)
    anonymous_did = Account.objects.filter(is_anonymous=True).values_list("did", flat=True).first() or ""
    rows, owners = [], Owners()
    for documents in source.documents_batches(batch_size=batch_size, kind=kind, **filters):
        plan = _plan(documents, duplicates=duplicates, anonymous_did=anonymous_did, owners=owners, kind=kind)
        rows += [_new_row(desired, kind=kind) for row, desired in plan.rows if row is None]
    return rows


def transfers_mark_stale(*, actor: str, refs: list[str] | None = None, kind: RecordKind) -> int:
    """Put back to pending every migrated document whose record was written
    from other fields than MongoDB now has (an edit that landed while it
    was being migrated, or since). Returns how many. The engine rewrites
    each record under its key (or removes it, for a nuked painting under
    NUKED_PAINTINGS=skip)."""
    stale = Transfer.objects.filter(kind=kind.name, status=Status.MIGRATED).exclude(record_fingerprint=F("source_fingerprint"))
    if refs is not None:
        stale = stale.filter(ref__in=refs)
    return len(
        transfers_transition(
            stale, from_statuses=[Status.MIGRATED], to=Status.PENDING, actor=actor,
            message="MongoDB changed since the record was written; it will be rewritten under the same key.",
        )  # fmt: skip
    )


@dataclass(frozen=True)
class Plan:
    """What a seed wants for one batch of documents: each document's row
    (None when new) with its Desired, and the owners' handles and accounts."""

    rows: list[tuple[Transfer | None, Desired]]
    handles: dict
    credentials: dict


@dataclass
class Owners:
    """The handles and credentials of the owners one seed met, each looked
    up in MongoDB once rather than once per batch (on a server without the
    ``_id`` index every ``$in`` scans ``users`` and ``@handles``: 0.3 s a
    batch, 29 s of a re-seed of 100,000 paintings by 25,000 users on
    SecantusDB). A full seed, which meets most of them, reads every user at
    once instead (``learn_everyone``): one read of each collection. At most
    OWNERS_KEPT."""

    handles: dict = field(default_factory=dict)
    credentials: dict = field(default_factory=dict)
    known: set = field(default_factory=set)
    everyone: bool = False  # every user was read: one not found has no handle or account

    def learn_everyone(self, *, kind: RecordKind) -> None:
        """Read every user's handle and credentials when a full seed of
        ``kind`` will meet many of them: its documents are at least as many
        as the users, and the users at most OWNERS_KEPT. Else each batch's
        owners are looked up (the 40 news items need 5 users, not all)."""
        users = source.users_estimate()
        if users > OWNERS_KEPT or source.documents_estimate(kind=kind) < users:
            return
        self.handles, self.credentials, self.everyone = source.handles_for(None), source.credentials_for(None), True

    def learn(self, owners: set[str]) -> None:
        if self.everyone:
            return
        unknown = owners - self.known
        if not unknown:
            return
        if len(self.known) + len(unknown) > OWNERS_KEPT:
            self.handles, self.credentials, self.known = {}, {}, set()
            unknown = set(owners)
        self.handles.update(source.handles_for(unknown))
        self.credentials.update(source.credentials_for(unknown))
        self.known |= unknown


def _plan(documents, *, duplicates, anonymous_did, owners: Owners, kind: RecordKind) -> Plan:
    sources = [kind.read(document) for document in documents]
    owners.learn({fields.owner for fields in sources if fields.owner})
    handles, credentials = owners.handles, owners.credentials
    existing = {row.ref: row for row in Transfer.objects.filter(kind=kind.name, ref__in=[fields.ref for fields in sources])}
    rows = []
    for document, fields in zip(documents, sources, strict=True):
        row = existing.get(fields.ref)
        rows.append((row, _desired(document, fields, row, handles, credentials, duplicates, anonymous_did, kind=kind)))
    return Plan(rows=rows, handles=handles, credentials=credentials)


def _seed_batch(documents, *, duplicates, anonymous_did, owners: Owners, actor, report, kind: RecordKind) -> None:
    plan = _plan(documents, duplicates=duplicates, anonymous_did=anonymous_did, owners=owners, kind=kind)
    new_rows, changed = [], []
    for row, desired in plan.rows:
        _count(report, desired.source, desired, plan.credentials, plan.handles)
        if row is None:
            new_rows.append(_new_row(desired, kind=kind))
        elif _differs(row, desired):
            changed.append((row, desired))
        else:
            report.unchanged += 1
    report.keys_restored += _keys_restore(plan, actor=actor, kind=kind)
    _create(new_rows, actor=actor, kind=kind)
    report.new += len(new_rows)
    _update(changed, actor=actor)
    report.updated += len(changed)


def _keys_restore(plan: "Plan", *, actor: str, kind: RecordKind) -> int:
    """Write back to MongoDB the keys of migrated documents that MongoDB has
    lost (restored from a backup taken before their migration), from what
    the state table knows of their records: nothing is written to the PDS.
    Returns how many were written back."""
    lost = [row for row, desired in plan.rows if row is not None and row.status == Status.MIGRATED and row.rkey and not desired.source.rkey]
    if not lost:
        return 0
    write_backs = [
        source.WriteBack(ref=row.ref, rkey=row.rkey, uri=row.record_uri or f"at://{row.account_did}/{kind.nsid}/{row.rkey}", cid=row.record_cid)
        for row in lost
    ]
    try:
        gone, refused = source.rkeys_write_back(write_backs, kind=kind), set()
    except BulkWriteError as error:  # the others were written (unordered); these documents cannot take the key
        gone = set()
        refused = {write_backs[failure["index"]].ref for failure in error.details.get("writeErrors", [])}
    events = []
    for row, back in zip(lost, write_backs, strict=True):
        if row.ref in refused:
            message = (
                f"MongoDB has lost {kind.migrated_field}; writing {back.rkey} back, MongoDB refused it: the document's "
                f"{kind.key_document} is not an object. Fix the document; the next seed writes the key back."
            )
        elif row.ref not in gone:
            message = (
                f"MongoDB had lost {kind.migrated_field} (restored from an older backup?): wrote {back.rkey} and "
                f"{back.uri} back from the state table; nothing written to the PDS."
            )
        else:
            continue
        events.append((row.pk, row.status, row.status, message))
    events_add(events, actor=actor)
    return len(lost) - len(refused) - len(gone)


def _desired(document, fields, row, handles, credentials, duplicates, anonymous_did, *, kind: RecordKind) -> Desired:
    unique = getattr(fields, kind.unique_field) if kind.unique_field else None
    problem = kind.problem(document, fields, duplicate_of=duplicates.get(unique) if unique else None)
    if row is not None and row.unpublished_at is not None:  # staff's word outweighs the data's
        problem = Problem(SkipReason.TAKEN_DOWN, f"Taken down by {row.unpublished_by}: {row.unpublished_reason}"[:500])
    handle = handles.get(fields.owner, "") if fields.owner else ""
    account = credentials.get(fields.owner) if fields.owner else None
    if problem is None and fields.owner and account is None:
        problem = Problem(SkipReason.NO_ACCOUNT, "The owner has no ATProto account in MongoDB (users.atproto).")
    if problem is None and account is not None and not account.usable:
        problem = Problem(SkipReason.NO_ACCOUNT, account.problem)
    if problem is None and kind.needs_handle and fields.owner and not handle:
        problem = Problem(SkipReason.NO_HANDLE, "The owner has no handle in @handles, so the image URL is unknown.")
    if problem is None and fields.nuked and (why := kind.deleted_why()):
        problem = Problem(SkipReason.NUKED, f"{why}.")
    values = {
        **kind.row_values(fields),
        "owner": fields.owner[:255] or (INVALID_OWNER if fields.owner_problem else ""),
        "owner_handle": handle[:255],
        "account_did": _account_did(fields, row, account, anonymous_did),
        "when": fields.when,
        "nuked": fields.nuked,
        "gone_since": None,  # MongoDB has it
    }
    if kind.recordings and _recording_found(row, values):
        values["content"] = {**values["content"], "recording": True}
    values["source_fingerprint"] = kind.fingerprint(values)
    return Desired(values=values, problem=problem, source=fields, kind=kind)


def _account_did(fields, row, account, anonymous_did: str) -> str:
    """The DID the document's record lives under. MongoDB's ``users.atproto.did``
    when it has one; else the DID the engine learned by logging in, as long
    as the owner is the same."""
    if fields.is_anonymous:
        return anonymous_did or (row.account_did if row is not None and not row.owner else "")
    if not fields.owner:
        return ""
    if account is not None and account.usable and account.did:
        return account.did[:255]
    return row.account_did if row is not None and row.owner == fields.owner else ""


def _recording_found(row, values: dict) -> bool:
    """Whether the row keeps a recording the engine found on storage: until
    what it was found under (the document's fields, the owner's handle)
    changes. What MongoDB itself says of one (a guest slug names its
    recording) is the kind's ``row_values``'."""
    if row is None or not row.has_recording or row.owner_handle != values["owner_handle"]:
        return False
    return row.content_with_recording(False) == values["content"]


def _count(report: SeedReport, fields, desired: Desired, credentials, handles) -> None:
    report.seen += 1
    if not fields.is_anonymous:
        report.user_paintings += 1
        report.paintings_by_owner[fields.owner or INVALID_OWNER] += 1
        if fields.owner in credentials:
            report.owners_with_account.add(fields.owner)
        if fields.owner in handles:
            report.owner_handles[fields.owner] = "@" + handles[fields.owner]
    else:
        report.anonymous += 1
    if desired.problem:
        report.problems[desired.problem.reason] += 1


def _new_row(desired: Desired, *, kind: RecordKind) -> Transfer:
    row = Transfer(kind=kind.name, ref=desired.source.ref, **desired.values)
    # A record MongoDB already points at is taken as written from these fields;
    # compare_paintings checks it.
    row.record_fingerprint = row.source_fingerprint
    row.record_shape = kind.record_shape()
    if desired.source.rkey:
        # MongoDB names a record the state table never knew of (the table was
        # lost and is being rebuilt, or another tool wrote it): the engine
        # looks it up under this key, adopts it with what it holds (its CID,
        # blob, recording) or writes it there when the PDS lacks it; the
        # record of a document that must have none (nuked, deleted) it removes.
        row.rkey = desired.source.rkey
        row.record_uri = desired.source.uri
        row.written_by = unknown_run()
    if desired.problem and not (row.rkey and desired.problem.reason in UNPUBLISHING_REASONS):
        row.status = Status.SKIPPED
        row.skip_reason = desired.problem.reason
        row.skip_detail = desired.problem.detail
    return row


def _create(rows: list[Transfer], *, actor: str, kind: RecordKind) -> None:
    if not rows:
        return
    with transaction.atomic():
        Transfer.objects.bulk_create(rows)
        if any(row.pk is None for row in rows):  # a backend that cannot return ids
            ids = dict(Transfer.objects.filter(kind=kind.name, ref__in=[row.ref for row in rows]).values_list("ref", "id"))
            for row in rows:
                row.pk = ids[row.ref]
        events_add(((row.pk, "", row.status, _seed_message(row, kind=kind)) for row in rows), actor=actor)


def _seed_message(row: Transfer, *, kind: RecordKind) -> str:
    if row.status == Status.SKIPPED:
        return f"Seeded from MongoDB; skipped: {row.skip_detail}"
    if row.rkey and row.nuked and kind.deleted_why():
        return f"Seeded from MongoDB, which already has {kind.migrated_field} {row.rkey}: the engine removes the record of the deleted {kind.name}."
    if row.rkey:
        return f"Seeded from MongoDB, which already has {kind.migrated_field} {row.rkey}: the engine looks the record up there and adopts it."
    return "Seeded from MongoDB."


def _differs(row: Transfer, desired: Desired) -> bool:
    if any(getattr(row, name) != value for name, value in desired.values.items()):
        return True
    if row.status == Status.MIGRATED and row.record_fingerprint != desired.values["source_fingerprint"]:
        return True
    return _status_action(row, desired) is not None


def _update(changed: list[tuple[Transfer, Desired]], *, actor: str) -> None:
    """Write changed mirrored fields in bulk, then the status changes they
    imply, one audited transition each (re-seeds change few rows)."""
    if not changed:
        return
    plans = []
    for row, desired in changed:
        differences = [
            f"{name} {_shown(getattr(row, name))} → {_shown(value)}"
            for name, value in desired.values.items()
            if getattr(row, name) != value and name not in ("source_fingerprint", "gone_since")
        ]
        if row.gone_since is not None:
            differences.append(f"MongoDB has this {desired.kind.name} again")
        stale_record = row.status == Status.MIGRATED and row.record_fingerprint != desired.values["source_fingerprint"]
        for name, value in desired.values.items():
            setattr(row, name, value)
        row.updated_at = timezone.now()  # bulk_update does not apply auto_now
        plans.append((row, desired, differences, stale_record))
    Transfer.objects.bulk_update([row for row, *_ in plans], MIRRORED_FIELDS + ("updated_at",))
    for row, desired, differences, stale_record in plans:
        if differences:
            transfer_note(row, actor=actor, message="Updated from MongoDB: " + "; ".join(differences))
        if stale_record:
            transfer_transition(
                row, to=Status.PENDING, actor=actor, message="The record is stale after these changes; it will be rewritten under the same key."
            )
            continue
        action = _status_action(row, desired)
        if action is None:
            continue
        to, message, fields = action
        if to == row.status:  # a skipped document whose reason changed
            Transfer.objects.filter(pk=row.pk).update(**fields)
            transfer_note(row, actor=actor, message=message)
        else:
            transfer_transition(row, to=to, actor=actor, message=message, **fields)


def _status_action(row: Transfer, desired: Desired) -> tuple[str, str, dict] | None:
    """What seeding does to an existing row's status, as (to, message,
    fields), or None. Rows that are queued, running or migrated are left to
    the run; reasons set by staff or by a run are left alone."""
    problem, fields, kind = desired.problem, desired.source, desired.kind
    if row.status in (Status.PENDING, Status.FAILED, Status.WAITING):
        if problem and (row.rkey or (row.attempts and problem.reason in UNPUBLISHING_REASONS)):
            # A record exists, or an attempt that stopped midway may have
            # written one: the run removes it before skipping (a nuked
            # painting must not stay published).
            return None
        if problem:
            return Status.SKIPPED, f"Skipped: {problem.detail}", _reason(problem)
        if fields.rkey and not row.rkey:
            # Where the engine looks first: it adopts the record found there.
            return (
                row.status,
                f"MongoDB already has {kind.migrated_field} {fields.rkey}: the engine looks the record up there and adopts it.",
                {"rkey": fields.rkey, "record_uri": fields.uri},
            )
    elif row.status == Status.SKIPPED and row.skip_reason in DATA_REASONS:
        if problem is None and row.skip_reason == SkipReason.GONE:
            # Restored: its record was removed, so MongoDB's atproto.rkey (a
            # backup keeps it) names no record yet. The engine writes it there.
            key = {"rkey": fields.rkey} if fields.rkey else {}
            return Status.PENDING, f"MongoDB has this {kind.name} again: it will be migrated again under the same record key.", {**_reason(None), **key}
        if problem is None:
            return Status.PENDING, f"No longer skipped ({row.get_skip_reason_display()}): MongoDB was fixed.", _reason(None)
        if (problem.reason, problem.detail) != (row.skip_reason, row.skip_detail):
            return Status.SKIPPED, f"Skip reason is now: {problem.detail}", _reason(problem)
    return None


def _shown(value) -> str:
    """A mirrored value in the audit trail: its repr, cut short (a program's
    source can be 50,000 characters)."""
    text = repr(value)
    return text if len(text) <= 120 else text[:119] + "…"


def _reason(problem: Problem | None) -> dict:
    return {"skip_reason": problem.reason if problem else "", "skip_detail": problem.detail if problem else ""}
