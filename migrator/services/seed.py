"""Seeding: mirror MongoDB's paintings into the state table.

Idempotent and cheap to re-run: documents are read in batches, compared with
their rows, and only differences are written (bulk create / bulk update).
A migrated row keeps its rkey and history whatever MongoDB says later.
"""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from migrator import source
from migrator.models import Account, MigrationEvent, PaintingMigration, SkipReason, Status
from migrator.records import Problem, SourceFields, painting_problem, source_fields
from migrator.services.state import painting_note, painting_transition

# Reasons that come from the data itself: seeding sets them, and lifts them
# when the document is fixed. Other reasons (set by staff or by a run) stay.
DATA_REASONS = frozenset(
    {
        SkipReason.MISSING_SLUG,
        SkipReason.BAD_SLUG,
        SkipReason.BAD_WHEN,
        SkipReason.BAD_CODE,
        SkipReason.TOO_LONG,
        SkipReason.DUPLICATE_CODE,
        SkipReason.NO_ACCOUNT,
        SkipReason.NO_HANDLE,
        SkipReason.NUKED,
    }
)
# Fields a record is made of: when one changes, a migrated record is stale.
RECORD_FIELDS = ("slug", "code", "when", "nuked")
MIRRORED_FIELDS = ("slug", "code", "owner", "owner_handle", "account_did", "when", "nuked", "has_recording")


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
    last_ref: str = ""

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
    source: SourceFields


def paintings_seed(
    *,
    actor: str,
    batch_size: int = 1000,
    on_batch: Callable[[SeedReport], None] | None = None,
    after_ref: str | None = None,
    refs: list[str] | None = None,
) -> SeedReport:
    """Upsert the state table from MongoDB and return the counts.

    ``after_ref`` reads only paintings inserted after that ObjectId (live
    sync); ``refs`` only those paintings (the upload hook).
    """
    report = SeedReport()
    duplicates = source.duplicate_codes()
    anonymous_did = Account.objects.filter(is_anonymous=True).values_list("did", flat=True).first() or ""
    for documents in source.paintings_batches(batch_size=batch_size, after_ref=after_ref, refs=refs):
        _seed_batch(documents, duplicates=duplicates, anonymous_did=anonymous_did, actor=actor, report=report)
        report.last_ref = max(report.last_ref, str(documents[-1]["_id"]))
        if on_batch:
            on_batch(report)
    return report


def _seed_batch(documents, *, duplicates, anonymous_did, actor, report) -> None:
    sources = [source_fields(document) for document in documents]
    owners = {fields.owner for fields in sources if fields.owner}
    handles = source.handles_for(owners)
    credentials = source.credentials_for(owners)
    existing = PaintingMigration.objects.in_bulk([fields.ref for fields in sources], field_name="ref")

    new_rows, changed = [], []
    for document, fields in zip(documents, sources, strict=True):
        desired = _desired(document, fields, handles, credentials, duplicates, anonymous_did)
        _count(report, fields, desired, credentials, handles)
        row = existing.get(fields.ref)
        if row is None:
            new_rows.append(_new_row(desired))
        elif _differs(row, desired):
            changed.append((row, desired))
        else:
            report.unchanged += 1
    _create(new_rows, actor=actor)
    report.new += len(new_rows)
    _update(changed, actor=actor)
    report.updated += len(changed)


def _desired(document, fields, handles, credentials, duplicates, anonymous_did) -> Desired:
    problem = painting_problem(document, fields, duplicate_of=duplicates.get(fields.code))
    handle = handles.get(fields.owner, "") if fields.owner else ""
    account = credentials.get(fields.owner) if fields.owner else None
    if problem is None and fields.owner and account is None:
        problem = Problem(SkipReason.NO_ACCOUNT, "The owner has no ATProto account in MongoDB (users.atproto).")
    if problem is None and fields.owner and not handle:
        problem = Problem(SkipReason.NO_HANDLE, "The owner has no handle in @handles, so the image URL is unknown.")
    if problem is None and fields.nuked and settings.NUKED_PAINTINGS == "skip":
        problem = Problem(SkipReason.NUKED, "The painting is nuked and NUKED_PAINTINGS=skip.")
    values = {
        "slug": fields.slug[:255],
        "code": fields.code[:64],
        "owner": fields.owner[:255],
        "owner_handle": handle[:255],
        "account_did": (account.did if account else "") if fields.owner else anonymous_did,
        "when": fields.when,
        "nuked": fields.nuked,
        "has_recording": fields.has_recording,
    }
    return Desired(values=values, problem=problem, source=fields)


def _count(report: SeedReport, fields, desired: Desired, credentials, handles) -> None:
    report.seen += 1
    if fields.owner:
        report.user_paintings += 1
        report.paintings_by_owner[fields.owner] += 1
        if fields.owner in credentials:
            report.owners_with_account.add(fields.owner)
        if fields.owner in handles:
            report.owner_handles[fields.owner] = "@" + handles[fields.owner]
    else:
        report.anonymous += 1
    if desired.problem:
        report.problems[desired.problem.reason] += 1


def _new_row(desired: Desired) -> PaintingMigration:
    row = PaintingMigration(ref=desired.source.ref, **desired.values)
    if desired.problem:
        row.status = Status.SKIPPED
        row.skip_reason = desired.problem.reason
        row.skip_detail = desired.problem.detail
    elif desired.source.rkey:
        row.status = Status.MIGRATED
        row.rkey = desired.source.rkey
        row.record_uri = desired.source.uri
        row.migrated_at = timezone.now()
    return row


def _create(rows: list[PaintingMigration], *, actor: str) -> None:
    if not rows:
        return
    with transaction.atomic():
        PaintingMigration.objects.bulk_create(rows)
        if any(row.pk is None for row in rows):  # a backend that cannot return ids
            ids = dict(PaintingMigration.objects.filter(ref__in=[row.ref for row in rows]).values_list("ref", "id"))
            for row in rows:
                row.pk = ids[row.ref]
        MigrationEvent.objects.bulk_create(
            MigrationEvent(painting=row, from_status="", to_status=row.status, message=_seed_message(row), actor=actor)
            for row in rows
        )


def _seed_message(row: PaintingMigration) -> str:
    if row.status == Status.SKIPPED:
        return f"Seeded from MongoDB; skipped: {row.skip_detail}"
    if row.status == Status.MIGRATED:
        return f"Seeded from MongoDB, which already has atproto.rkey {row.rkey}."
    return "Seeded from MongoDB."


def _differs(row: PaintingMigration, desired: Desired) -> bool:
    if any(getattr(row, name) != value for name, value in desired.values.items()):
        return True
    return _status_action(row, desired) is not None


def _update(changed: list[tuple[PaintingMigration, Desired]], *, actor: str) -> None:
    """Write changed mirrored fields in bulk, then the status changes they
    imply, one audited transition each (re-seeds change few rows)."""
    if not changed:
        return
    plans = []
    for row, desired in changed:
        differences = [
            f"{name} {getattr(row, name)!r} → {value!r}"
            for name, value in desired.values.items()
            if getattr(row, name) != value
        ]
        stale_record = row.status == Status.MIGRATED and any(
            getattr(row, name) != desired.values[name] for name in RECORD_FIELDS
        )
        for name, value in desired.values.items():
            setattr(row, name, value)
        plans.append((row, desired, differences, stale_record))
    PaintingMigration.objects.bulk_update([row for row, *_ in plans], MIRRORED_FIELDS + ("updated_at",))
    for row, desired, differences, stale_record in plans:
        if differences:
            painting_note(row, actor=actor, message="Updated from MongoDB: " + "; ".join(differences))
        if stale_record:
            painting_transition(
                row, to=Status.PENDING, actor=actor, message="The record is stale after these changes; it will be rewritten under the same key."
            )
            continue
        action = _status_action(row, desired)
        if action is None:
            continue
        to, message, fields = action
        if to == row.status:  # a skipped painting whose reason changed
            PaintingMigration.objects.filter(pk=row.pk).update(**fields)
            painting_note(row, actor=actor, message=message)
        else:
            painting_transition(row, to=to, actor=actor, message=message, **fields)


def _status_action(row: PaintingMigration, desired: Desired) -> tuple[str, str, dict] | None:
    """What seeding does to an existing row's status, as (to, message,
    fields), or None. Rows that are queued, running or migrated are left to
    the run; reasons set by staff or by a run are left alone."""
    problem, fields = desired.problem, desired.source
    if row.status in (Status.PENDING, Status.FAILED):
        if problem and row.rkey:
            return None  # a record exists: the run removes it before skipping
        if problem:
            return Status.SKIPPED, f"Skipped: {problem.detail}", _reason(problem)
        if fields.rkey and not row.rkey:
            return (
                Status.MIGRATED,
                f"MongoDB already has atproto.rkey {fields.rkey}.",
                {"rkey": fields.rkey, "record_uri": fields.uri, "migrated_at": timezone.now()},
            )
    elif row.status == Status.SKIPPED and row.skip_reason in DATA_REASONS:
        if problem is None:
            return Status.PENDING, f"No longer skipped ({row.get_skip_reason_display()}): MongoDB was fixed.", _reason(None)
        if (problem.reason, problem.detail) != (row.skip_reason, row.skip_detail):
            return Status.SKIPPED, f"Skip reason is now: {problem.detail}", _reason(problem)
    return None


def _reason(problem: Problem | None) -> dict:
    return {"skip_reason": problem.reason if problem else "", "skip_detail": problem.detail if problem else ""}
