"""The migration status report the plan asks for (ATPROTO-MIGRATION-STATUS.md).

``migration_status`` reads the state table and its events into a
MigrationStatus (aggregates only: nothing grows with the corpus except the
few failed rows it groups); ``migration_status_markdown`` renders it.
"""

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from django.db.models import Count, Max, Min, Q, Sum
from django.utils import timezone

from migrator.kinds import KINDS, PAINTING, RecordKind
from migrator.models import ErrorKind, TransferEvent, Transfer, SkipReason, Status
from migrator.failures import error_signature
from migrator.selectors import VerificationSummary, binding_limits, duration_text, verification_summary
from migrator.services import lifecycle

# Skip reasons that mean the MongoDB document itself is malformed.
MALFORMED_REASONS = (SkipReason.MISSING_SLUG, SkipReason.BAD_SLUG, SkipReason.BAD_WHEN, SkipReason.TOO_LONG, SkipReason.BAD_CODE)
NO_FALLBACK = "png"  # the first step of the thumbnail ladder: a plain PNG fitted
EXAMPLE_REFS = 3


@dataclass
class KindLine:
    """One kind's part of the migration: by status, skips and failures."""

    kind: RecordKind
    total: int
    by_status: dict[str, int]
    by_skip_reason: dict[str, int]
    failures: list["FailureGroup"]

    @property
    def migrated(self) -> int:
        return self.by_status.get(Status.MIGRATED, 0)


@dataclass(frozen=True)
class AccountLine:
    handle: str
    did: str
    total: int
    migrated: int
    skipped: int
    failed: int


@dataclass
class FailureGroup:
    error_kind: str
    error: str
    count: int = 0
    refs: list[str] = field(default_factory=list)


@dataclass
class MigrationStatus:
    generated_at: dt.datetime
    total: int
    by_status: dict[str, int]
    by_skip_reason: dict[str, int]
    accounts: list[AccountLine]
    account_count: int
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    failures: list[FailureGroup]
    edge_cases: list[tuple[str, int]]
    thumbnail_fallbacks: dict[str, int]
    thumbnail_count: int
    thumbnail_bytes: int
    thumbnail_max: int
    thumbnail_mimes: dict[str, int]
    limits: list = field(default_factory=list)  # selectors.BindingLimit: rate limits paintings wait for
    hold: object = None  # the open RemovalHold, if any
    stale_shape: int = 0  # records of an older shape
    taken_down: int = 0
    verification: VerificationSummary | None = None  # the last comparison of MongoDB, the state table and the PDS
    kinds: list[KindLine] = field(default_factory=list)  # every kind the state table has, the painting first

    @property
    def migrated(self) -> int:
        return self.by_status.get(Status.MIGRATED, 0)

    @property
    def minutes(self) -> float | None:
        if not self.started_at or not self.finished_at or self.finished_at <= self.started_at:
            return None
        return (self.finished_at - self.started_at).total_seconds() / 60

    @property
    def rate(self) -> float | None:
        """Paintings migrated per minute between the start and the end."""
        return self.migrated / self.minutes if self.minutes else None


def migration_status(*, now: dt.datetime | None = None, top_accounts: int = 20) -> MigrationStatus:
    """The state of the migration now, from the state table and its events:
    the paintings in full, and every kind by status, skips and failures."""
    rows = Transfer.objects.filter(kind=PAINTING.name)
    by_status = dict(rows.values_list("status").annotate(n=Count("id")).order_by("-n", "status"))
    skipped = rows.filter(status=Status.SKIPPED)
    by_skip_reason = dict(skipped.values_list("skip_reason").annotate(n=Count("id")).order_by("-n", "skip_reason"))
    thumbnails = rows.filter(status=Status.MIGRATED, blob_size__isnull=False)
    sizes = thumbnails.aggregate(count=Count("id"), total=Sum("blob_size"), largest=Max("blob_size"))
    started_at, finished_at = _span(rows)
    return MigrationStatus(
        generated_at=now or timezone.now(),
        total=rows.count(),
        by_status=by_status,
        by_skip_reason=by_skip_reason,
        accounts=_accounts(rows, top_accounts),
        account_count=rows.exclude(account_did="").values("account_did").order_by().distinct().count(),
        started_at=started_at,
        finished_at=finished_at,
        failures=_failures(rows.filter(status=Status.FAILED)),
        edge_cases=_edge_cases(rows, by_skip_reason),
        thumbnail_fallbacks=dict(
            thumbnails.exclude(blob_fallback__in=("", NO_FALLBACK))
            .values_list("blob_fallback").annotate(n=Count("id")).order_by("-n", "blob_fallback")
        ),  # fmt: skip
        thumbnail_count=sizes["count"],
        thumbnail_bytes=sizes["total"] or 0,
        thumbnail_max=sizes["largest"] or 0,
        thumbnail_mimes=dict(thumbnails.values_list("blob_mime").annotate(n=Count("id")).order_by("-n")),
        limits=binding_limits(now=now),
        hold=lifecycle.removal_hold(),
        stale_shape=lifecycle.transfers_stale_shape(kind=PAINTING).count(),
        taken_down=rows.exclude(unpublished_at=None).count(),
        verification=verification_summary(now=now),
        kinds=_kinds(),
    )


def _kinds() -> list[KindLine]:
    present = set(Transfer.objects.order_by().values_list("kind", flat=True).distinct())
    lines = []
    for kind in KINDS.values():
        if kind.name not in present and kind is not PAINTING:
            continue
        rows = Transfer.objects.filter(kind=kind.name)
        by_status = dict(rows.values_list("status").annotate(n=Count("id")).order_by("-n", "status"))
        skipped = rows.filter(status=Status.SKIPPED)
        by_skip_reason = dict(skipped.values_list("skip_reason").annotate(n=Count("id")).order_by("-n", "skip_reason"))
        lines.append(KindLine(kind, sum(by_status.values()), by_status, by_skip_reason, _failures(rows.filter(status=Status.FAILED))))
    return lines


def _span(rows) -> tuple[dt.datetime | None, dt.datetime | None]:
    """When the migration started (the first claim or migration) and ended (the last migration)."""
    migrated = rows.filter(status=Status.MIGRATED).aggregate(first=Min("migrated_at"), last=Max("migrated_at"))
    first_claim = TransferEvent.objects.filter(to_status=Status.RUNNING).aggregate(first=Min("at"))["first"]
    starts = [moment for moment in (first_claim, migrated["first"]) if moment]
    return (min(starts) if starts else None), migrated["last"]


def _accounts(rows, top: int) -> list[AccountLine]:
    grouped = (
        rows.values("account_did", "owner_handle", "owner")
        .annotate(
            total=Count("id"),
            migrated=Count("id", filter=Q(status=Status.MIGRATED)),
            skipped=Count("id", filter=Q(status=Status.SKIPPED)),
            failed=Count("id", filter=Q(status=Status.FAILED)),
        )
        .order_by("-total", "owner_handle")[:top]
    )
    return [
        AccountLine(
            handle=("@" + line["owner_handle"]) if line["owner_handle"] else (f"{line['owner']} (no handle)" if line["owner"] else "anonymous (guests)"),
            did=line["account_did"],
            total=line["total"],
            migrated=line["migrated"],
            skipped=line["skipped"],
            failed=line["failed"],
        )
        for line in grouped
    ]


def _failures(failed) -> list[FailureGroup]:
    groups: dict[tuple[str, str], FailureGroup] = {}
    for ref, kind, error in failed.order_by("id").values_list("ref", "error_kind", "last_error").iterator(chunk_size=1000):
        key = (kind, error_signature(error))
        group = groups.setdefault(key, FailureGroup(error_kind=kind, error=key[1]))
        group.count += 1
        if len(group.refs) < EXAMPLE_REFS:
            group.refs.append(ref)
    return sorted(groups.values(), key=lambda group: (-group.count, group.error_kind, group.error))


def _edge_cases(rows, by_skip_reason: dict[str, int]) -> list[tuple[str, int]]:
    migrated = rows.filter(status=Status.MIGRATED)
    counts = migrated.aggregate(
        nuked=Count("id", filter=Q(nuked=True)),
        recordings=Count("id", filter=Q(content__recording=True)),
        guests=Count("id", filter=Q(owner="")),
        fallbacks=Count("id", filter=~Q(blob_fallback__in=("", NO_FALLBACK))),
    )
    reason = Counter(by_skip_reason)
    return [
        ("Nuked paintings migrated with `nuked: true`", counts["nuked"]),
        ("Nuked paintings skipped (NUKED_PAINTINGS=skip)", reason[SkipReason.NUKED]),
        ("Missing images (404), skipped", reason[SkipReason.IMAGE_MISSING]),
        ("Unreadable images, skipped", reason[SkipReason.INVALID_IMAGE]),
        ("Duplicate codes (the oldest painting keeps the code), skipped", reason[SkipReason.DUPLICATE_CODE]),
        ("Malformed documents, skipped", sum(reason[r] for r in MALFORMED_REASONS)),
        *[(f"Malformed, of which: {SkipReason(r).label.lower()}", reason[r]) for r in MALFORMED_REASONS if reason[r]],
        ("Records invalid against the lexicon, skipped", reason[SkipReason.INVALID_RECORD]),
        ("Owners without an ATProto account, skipped", reason[SkipReason.NO_ACCOUNT]),
        ("Owners without a handle, skipped", reason[SkipReason.NO_HANDLE]),
        ("Thumbnails that needed a fallback encoding", counts["fallbacks"]),
        ("Paintings with a recording (recordingUrl) migrated", counts["recordings"]),
        ("Guest paintings migrated to the anonymous account", counts["guests"]),
    ]


def _limits(status: MigrationStatus) -> list[str]:
    if not status.limits:
        return ["No painting waits for a PDS rate limit."]
    lines = _table(["Limit", "Waiting", "Resets (UTC)", "The rest at this limit"], [
        [limit.name, limit.waiting, _moment(limit.resets_at), f"{limit.left} paintings: about {duration_text(limit.rest_takes)}"]
        for limit in status.limits
    ])  # fmt: skip
    return [*lines, "", "Waiting paintings resume by themselves when their limit resets. " + status.limits[0].remedy]


def migration_status_markdown(status: MigrationStatus) -> str:
    """The report as Markdown."""
    lines = [
        "# ATProto migration status",
        "",
        f"Generated {_moment(status.generated_at)}.",
        "",
        f"**{status.migrated} of {status.total} paintings migrated** ({_percent(status.migrated, status.total)})"
        f" to {status.account_count} accounts.",
        "",
        *_after_backfill(status),
        "## By status",
        "",
        *_table(["Status", "Paintings"], [[Status(s).label, n] for s, n in status.by_status.items()] + [["**Total**", status.total]]),
        "",
        "## Skipped, by reason",
        "",
        *(_table(["Reason", "Paintings"], [[SkipReason(r).label if r else "(none)", n] for r, n in status.by_skip_reason.items()]) or ["None."]),
        "",
        "## Verification",
        "",
        *_verification(status),
        "",
        "## Timing",
        "",
        *_timing(status),
        "",
        "## Rate limits",
        "",
        *_limits(status),
        "",
        "## Accounts",
        "",
        f"The {len(status.accounts)} owners with the most paintings ({status.account_count} ATProto accounts in all):",
        "",
        *(_table(["Handle", "DID", "Total", "Migrated", "Skipped", "Failed"], [
            [a.handle, f"`{a.did}`" if a.did else "—", a.total, a.migrated, a.skipped, a.failed] for a in status.accounts
        ]) or ["None."]),  # fmt: skip
        "",
        "## Failures, by error",
        "",
        *(_table(["Kind", "Error", "Paintings", "Examples"], [
            [ErrorKind(f.error_kind).label if f.error_kind else "—", f"`{f.error}`", f.count, ", ".join(f"`{r}`" for r in f.refs)]
            for f in status.failures
        ]) or ["None."]),  # fmt: skip
        "",
        "## Edge cases met",
        "",
        *_table(["Case", "Paintings"], [[case, n] for case, n in status.edge_cases]),
        "",
        "## Thumbnails",
        "",
        *_thumbnails(status),
        "",
        "## Every kind",
        "",
        *_every_kind(status),
    ]
    return "\n".join(lines) + "\n"


def _every_kind(status: MigrationStatus) -> list[str]:
    """Each kind's progress, and for the kinds beside paintings (whose
    sections are above) their skips and failures."""
    statuses = [Status.MIGRATED, Status.PENDING, Status.QUEUED, Status.RUNNING, Status.WAITING, Status.SKIPPED, Status.FAILED]
    lines = _table(
        ["Kind", "Documents", *[Status(s).label for s in statuses], "Done"],
        [[line.kind.plural, line.total, *[line.by_status.get(s, 0) for s in statuses], _percent(line.migrated, line.total)] for line in status.kinds],
    )
    for line in status.kinds:
        if line.kind is PAINTING:
            continue
        lines += ["", f"### {line.kind.plural.capitalize()}", ""]
        lines += _table(["Skipped, by reason", line.kind.plural.capitalize()], [[SkipReason(r).label if r else "(none)", n] for r, n in line.by_skip_reason.items()]) or ["Nothing skipped."]
        lines += [""]
        lines += _table(["Failed: kind", "Error", line.kind.plural.capitalize(), "Examples"], [
            [ErrorKind(f.error_kind).label if f.error_kind else "—", f"`{f.error}`", f.count, ", ".join(f"`{r}`" for r in f.refs)]
            for f in line.failures
        ]) or ["Nothing failed."]  # fmt: skip
    return lines


def _after_backfill(status: MigrationStatus) -> list[str]:
    """What needs a person after the backfill, first."""
    lines = []
    if status.hold is not None:
        hold = status.hold
        lines += [
            f"**Removals held:** a seed found {hold.count} of {hold.known} {KINDS[hold.kind].plural if hold.kind in KINDS else hold.kind} gone from MongoDB database `{hold.database}`, "
            f"more than the {hold.bound} it may remove at once, so it removed none. Confirm on the dashboard, or restore them "
            "(the hold clears by itself). Examples: " + ", ".join(f"`{example['ref']}`" for example in hold.examples[:5]) + ".",
            "",
        ]
    if status.stale_shape:
        lines += [f"**{status.stale_shape} records were written in an older shape**: `manage.py rewrite_stale_records` shows one and rewrites them.", ""]
    if status.taken_down:
        lines += [f"{status.taken_down} paintings are taken down by staff.", ""]
    return lines


def _verification(status: MigrationStatus) -> list[str]:
    summary = status.verification
    if summary is None:
        return ["Not known."]
    latest = summary.latest
    lines = [summary.line]
    if latest is not None:
        lines[0] += f" ({latest.actor}, started {_moment(latest.started_at)})"
    if summary.counts:
        lines += ["", *_table(["Difference", "Count"], [[label, count] for label, count in summary.counts])]
    return lines


def _timing(status: MigrationStatus) -> list[str]:
    if status.started_at is None:
        return ["Nothing migrated yet."]
    lines = [f"- Started: {_moment(status.started_at)}", f"- Last painting migrated: {_moment(status.finished_at)}"]
    if status.minutes:
        lines.append(f"- Duration: {status.minutes:.1f} minutes")
        lines.append(f"- Rate: {status.rate:.1f} paintings/minute")
    else:
        lines.append("- Rate: n/a (no time between the start and the end)")
    return lines


def _thumbnails(status: MigrationStatus) -> list[str]:
    if not status.thumbnail_count:
        return ["No thumbnails uploaded yet."]
    average = status.thumbnail_bytes / status.thumbnail_count
    lines = [
        f"- Uploaded: {status.thumbnail_count} thumbnails, {_bytes(status.thumbnail_bytes)} in total"
        f" ({status.thumbnail_bytes} bytes); average {_bytes(average)}, largest {_bytes(status.thumbnail_max)}",
        "- By type: " + ", ".join(f"{mime or 'unknown'} {n}" for mime, n in status.thumbnail_mimes.items()),
    ]
    if status.thumbnail_fallbacks:
        lines += ["", *_table(["Fallback encoding", "Thumbnails"], [[f"`{kind}`", n] for kind, n in status.thumbnail_fallbacks.items()])]
    else:
        lines.append("- Every thumbnail fitted as a plain PNG; no fallback needed.")
    return lines


def _table(header: list[str], rows: list[list]) -> list[str]:
    if not rows:
        return []
    cells = [[str(cell).replace("|", "\\|") for cell in row] for row in rows]
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if i and all(_numeric(row[i]) for row in cells) else "---" for i in range(len(header))) + "|",
        *("| " + " | ".join(row) + " |" for row in cells),
    ]


def _numeric(cell: str) -> bool:
    return cell.strip("*").replace(",", "").isdigit()


def _moment(moment: dt.datetime | None) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "—"


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "0%"


def _bytes(count: float) -> str:
    if count < 1024:
        return f"{count:.0f} bytes"
    if count < 1024 * 1024:
        return f"{count / 1024:.1f} KB"
    return f"{count / 1024 / 1024:.1f} MB"
