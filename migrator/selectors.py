"""Read-only queries behind the console: the dashboard's figures, failure
groups, per-account progress, the job cluster's health, and the record as
the PDS holds it. Nothing here writes; writes go through migrator.services.
"""

import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import Count, Max, Min, Q, QuerySet
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import Schedule, Task
from django_q.status import Stat

from migrator import logs
from migrator.alerts import alerts_open
from migrator.differences import DifferenceKind
from migrator.failures import error_signature, failure_group_key
from migrator.kinds import KINDS
from migrator.models import DATA_REASONS, Alert, Transfer, RateLimitWindow, SkipReason, Status, Verification
from migrator.pds import PdsError, public_record_get
from migrator.pds.calls import RetryPolicy
from migrator.pds.limits import REMEDY

log = logging.getLogger("migrator.selectors")
# What a verification that never finished is said to have met.
ABANDONED = "It did not finish: its process stopped, or it ran past the job timeout."

# Statuses whose documents still have work ahead of them.
REMAINING = (Status.PENDING, Status.QUEUED, Status.RUNNING, Status.FAILED, Status.WAITING)
# Statuses that mean a migration is under way: the dashboard keeps refreshing.
IN_FLIGHT = (Status.QUEUED, Status.RUNNING)
THROUGHPUT_WINDOWS = (1, 5, 15)  # minutes


def kinds_present() -> set[str]:
    """The kinds the state table has rows of (one index scan)."""
    return set(Transfer.objects.order_by().values_list("kind", flat=True).distinct())


@dataclass(frozen=True)
class KindProgress:
    """One kind's rows by status, for the dashboard."""

    name: str
    plural: str
    by_status: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    @property
    def done_percent(self) -> float:
        done = self.by_status.get(Status.MIGRATED, 0) + self.by_status.get(Status.SKIPPED, 0)
        return 100 * done / self.total if self.total else 100.0

    def count(self, *statuses: str) -> int:
        return sum(self.by_status.get(status, 0) for status in statuses)

    @property
    def in_progress(self) -> int:
        return self.count(Status.PENDING, Status.QUEUED, Status.RUNNING)


def kinds_progress(counts: dict[str, dict[str, int]] | None = None) -> list[KindProgress]:
    """Every kind the state table has, by status, in the registry's order,
    from ``counts`` (``counts_by_kind_and_status``; read when not given)."""
    counts = counts_by_kind_and_status() if counts is None else counts
    return [KindProgress(kind.name, kind.plural, counts[kind.name]) for kind in KINDS.values() if kind.name in counts]


def counts_by_kind_and_status() -> dict[str, dict[str, int]]:
    """Rows by kind, then by status (one GROUP BY)."""
    counts: dict[str, dict[str, int]] = {}
    for kind, status, count in Transfer.objects.order_by().values_list("kind", "status").annotate(n=Count("id")):
        counts.setdefault(kind, {})[status] = count
    return counts


def transfers_by_status(counts: dict[str, dict[str, int]]) -> dict[str, int]:
    """Transfers by status (zero included), in the machine's order, from
    ``counts`` (``counts_by_kind_and_status``)."""
    totals = Counter()
    for by_status in counts.values():
        totals.update(by_status)
    return {status: totals.get(status, 0) for status in Status.values}


@dataclass(frozen=True)
class Throughput:
    """Paintings migrated in the last 1, 5 and 15 minutes (``counts``), and
    how many minutes of each window the migration has actually been running
    (``spans``): a run that began 80 seconds ago has 80 seconds of history,
    not 5 or 15 minutes, and dividing by those would show a fifth of its
    real rate."""

    counts: dict[int, int]
    spans: dict[int, float]

    def per_minute(self, minutes: int) -> float:
        return round(self.counts[minutes] / self.spans[minutes], 1) if self.counts[minutes] else 0.0


# Rates from less history than this would swing wildly.
MINIMUM_SPAN_MINUTES = 0.5


def transfers_throughput(*, now: dt.datetime | None = None) -> Throughput:
    """Throughput over each window. One query, served by the index on
    ``migrated_at``."""
    now = now or timezone.now()
    longest = max(THROUGHPUT_WINDOWS)
    recent = Transfer.objects.filter(migrated_at__gte=now - dt.timedelta(minutes=longest))
    found = recent.aggregate(
        first=Min("migrated_at"),
        **{f"m{minutes}": Count("id", filter=Q(migrated_at__gte=now - dt.timedelta(minutes=minutes))) for minutes in THROUGHPUT_WINDOWS},
    )
    running_for = (now - found["first"]).total_seconds() / 60 if found["first"] else longest
    spans = {minutes: max(MINIMUM_SPAN_MINUTES, min(minutes, running_for)) for minutes in THROUGHPUT_WINDOWS}
    return Throughput(counts={minutes: found[f"m{minutes}"] for minutes in THROUGHPUT_WINDOWS}, spans=spans)


def migration_eta(*, remaining: int, throughput: Throughput) -> dt.timedelta | None:
    """Time left at the recent rate: the 5-minute rate, else the 15-minute one.
    None when nothing is moving (no rate to extrapolate) or nothing remains."""
    if not remaining:
        return None
    for minutes in (5, 15, 1):
        if throughput.counts.get(minutes):
            per_second = throughput.per_minute(minutes) / 60
            return dt.timedelta(seconds=round(remaining / per_second))
    return None


@dataclass
class FailureGroup:
    key: str
    error_kind: str
    signature: str
    count: int
    example_id: int
    example_error: str


def failure_groups(*, limit: int = 20) -> list[FailureGroup]:
    """Failed documents grouped by error class (error_kind and the normalized
    first line of last_error), largest group first, at most ``limit``."""
    groups: dict[str, FailureGroup] = {}
    secrets = logs.secrets_known()
    failed = Transfer.objects.filter(status=Status.FAILED).order_by("id")
    for transfer_id, error_kind, last_error in failed.values_list("id", "error_kind", "last_error").iterator(2000):
        signature = error_signature(last_error, secrets)
        key = failure_group_key(error_kind, signature)
        group = groups.get(key)
        if group is None:
            groups[key] = FailureGroup(key, error_kind, signature, 1, transfer_id, last_error[:500])
        else:
            group.count += 1
    return sorted(groups.values(), key=lambda group: (-group.count, group.signature))[:limit]


def failure_group_transfers(key: str) -> QuerySet:
    """The failed documents of the group ``key`` (see ``failure_groups``)."""
    failed = Transfer.objects.filter(status=Status.FAILED)
    secrets = logs.secrets_known()
    ids = [
        transfer_id
        for transfer_id, error_kind, last_error in failed.values_list("id", "error_kind", "last_error").iterator(2000)
        if failure_group_key(error_kind, error_signature(last_error, secrets)) == key
    ]
    return Transfer.objects.filter(id__in=ids)


@dataclass
class AccountProgress:
    account_did: str
    handle: str
    total: int
    migrated: int
    skipped: int
    failed: int
    remaining: int

    @property
    def label(self) -> str:
        if not self.account_did:
            return "no ATProto account"
        return f"@{self.handle}" if self.handle else "anonymous"

    @property
    def done_percent(self) -> float:
        return 100.0 * (self.migrated + self.skipped) / self.total if self.total else 100.0


def accounts_progress(*, limit: int = 15) -> list[AccountProgress]:
    """The accounts with the most documents still to migrate, first."""
    rows = (
        Transfer.objects.order_by()
        .values("account_did")
        .annotate(
            handle=Max("owner_handle"),
            total=Count("id"),
            migrated=Count("id", filter=Q(status=Status.MIGRATED)),
            skipped=Count("id", filter=Q(status=Status.SKIPPED)),
            failed=Count("id", filter=Q(status=Status.FAILED)),
            remaining=Count("id", filter=Q(status__in=REMAINING)),
        )
        .order_by("-remaining", "-total", "account_did")[:limit]
    )
    return [AccountProgress(**row) for row in rows]


@dataclass
class ClusterHealth:
    """What the django-q2 cluster says about itself. ``problem`` is set when
    the broker or the cache could not be read (the page shows it, never fails)."""

    clusters: list[dict] = field(default_factory=list)
    workers: int = 0
    queued_jobs: int | None = None
    schedules: list[dict] = field(default_factory=list)
    problem: str = ""

    @property
    def alive(self) -> bool:
        return self.workers > 0


def cluster_health() -> ClusterHealth:
    """Clusters from their heartbeats in the shared cache (django_q.status.Stat),
    the broker's queue length, and each schedule's last and next run."""
    health = ClusterHealth()
    try:
        for stat in Stat.get_all():
            health.clusters.append(
                {"cluster": stat.cluster_id, "host": stat.host, "status": stat.status, "workers": len(stat.workers), "uptime": stat.uptime()}
            )
            health.workers += len(stat.workers)
        health.queued_jobs = get_broker().queue_size()
    except Exception as error:  # any broker or cache failure: show it, keep the page
        log.warning("cluster health unavailable: %s", error)
        health.problem = f"The job cluster's state could not be read: {error.__class__.__name__}: {error}"
    schedules = list(Schedule.objects.order_by("next_run")[:10])
    last_tasks = Task.objects.in_bulk([schedule.task for schedule in schedules if schedule.task])
    for schedule in schedules:
        task = last_tasks.get(schedule.task)
        health.schedules.append(
            {
                "name": schedule.name or schedule.func,
                "next_run": schedule.next_run,
                "last_run": task.stopped if task else None,
                "last_ok": task.success if task else None,
            }
        )
    return health


@dataclass
class Dashboard:
    by_status: dict[str, int]
    throughput: Throughput
    eta: dt.timedelta | None
    failures: list[FailureGroup]
    accounts: list[AccountProgress]
    cluster: ClusterHealth
    at: dt.datetime
    skips: list["SkipGroup"] = field(default_factory=list)
    limits: list["BindingLimit"] = field(default_factory=list)
    verification: "VerificationSummary | None" = None
    alerts: list[Alert] = field(default_factory=list)  # open ones, newest first
    kinds: list[KindProgress] = field(default_factory=list)  # every kind's progress

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    @property
    def remaining(self) -> int:
        return sum(self.by_status[status] for status in REMAINING)

    @property
    def in_flight(self) -> bool:
        """A migration is running: something is queued or running, or
        documents were migrated in the last minute."""
        return any(self.by_status[status] for status in IN_FLIGHT) or bool(self.throughput.counts[1])

    @property
    def rates(self) -> dict[int, float]:
        """Paintings per minute over each window of ``throughput``."""
        return {minutes: self.throughput.per_minute(minutes) for minutes in self.throughput.counts}

    def as_json(self) -> dict:
        return {
            "at": self.at.isoformat(),
            "total": self.total,
            "remaining": self.remaining,
            "by_status": self.by_status,
            "throughput": {f"{minutes}m": count for minutes, count in self.throughput.counts.items()},
            "per_minute": {f"{minutes}m": rate for minutes, rate in self.rates.items()},
            "eta_seconds": int(self.eta.total_seconds()) if self.eta else None,
            "in_flight": self.in_flight,
            "failure_groups": len(self.failures),
            "workers": self.cluster.workers,
            "queued_jobs": self.cluster.queued_jobs,
            "limits": [limit.as_json() for limit in self.limits],
            "kinds": {kind.plural: kind.by_status for kind in self.kinds},
        }


def duration_text(duration: dt.timedelta | None) -> str:
    """"2 d 03 h", "2 h 05 min", "4 min 10 s", "12 s"; an en dash when there is no estimate."""
    if duration is None:
        return "–"
    seconds = int(duration.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days} d {hours:02d} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {seconds:02d} s"
    return f"{seconds} s"


@dataclass(frozen=True)
class BindingLimit:
    """A PDS rate limit documents wait for: which, until when, and what the
    rest of the migration takes at that limit."""

    name: str
    scope: str
    waiting: int
    resets_at: dt.datetime
    left: int  # documents still to go through this limit (for a per-IP limit: all remaining)
    rest_takes: dt.timedelta | None  # at this limit, from now; None when the limit's size is unknown

    @property
    def rest_takes_text(self) -> str:
        return duration_text(self.rest_takes)

    @property
    def remedy(self) -> str:
        return REMEDY if self.scope == "ip" else "It is one account's own budget; the other accounts go on meanwhile."

    def as_json(self) -> dict:
        return {
            "name": self.name, "waiting": self.waiting, "resets_at": self.resets_at.isoformat(), "left": self.left,
            "rest_takes_seconds": int(self.rest_takes.total_seconds()) if self.rest_takes else None, "remedy": self.remedy,
        }  # fmt: skip


def binding_limits(*, now: dt.datetime | None = None, remaining: int | None = None) -> list[BindingLimit]:
    """The rate limits documents wait for now, latest reset first.
    ``remaining``: the documents left to migrate, when the caller knows."""
    now = now or timezone.now()
    waiting = (
        Transfer.objects.filter(status=Status.WAITING).order_by().values("waiting_for")
        .annotate(count=Count("id"), resets_at=Max("not_before"))
    )  # fmt: skip
    windows = {window.name: window for window in RateLimitWindow.objects.filter(name__in=[row["waiting_for"] for row in waiting])}
    limits = []
    for row in waiting:
        window = windows.get(row["waiting_for"])
        scope = window.scope if window else ""
        if scope == "ip" and remaining is None:  # a budget every document draws from
            remaining = Transfer.objects.filter(status__in=REMAINING).count()
        left = remaining if scope == "ip" else row["count"]
        resets_at = row["resets_at"] or now
        rest = None
        if window and window.limit:
            windows_needed = -(-left // window.limit)  # the first starts at the reset
            rest = max(resets_at - now, dt.timedelta(0)) + dt.timedelta(seconds=window.window_seconds) * (windows_needed - 1)
        limits.append(BindingLimit(row["waiting_for"] or "a PDS rate limit", scope, row["count"], resets_at, left, rest))
    return sorted(limits, key=lambda limit: limit.resets_at, reverse=True)


@dataclass(frozen=True)
class SkipGroup:
    reason: str
    label: str
    count: int
    recheckable: bool  # set by a run or by staff, not by MongoDB's data


def skips_by_reason() -> list[SkipGroup]:
    """Skipped documents counted by reason, largest first."""
    rows = Transfer.objects.filter(status=Status.SKIPPED).values("skip_reason").annotate(count=Count("id")).order_by("-count", "skip_reason")
    return [
        SkipGroup(
            reason=row["skip_reason"],
            label=SkipReason(row["skip_reason"]).label if row["skip_reason"] in SkipReason.values else row["skip_reason"] or "unknown",
            count=row["count"],
            recheckable=row["skip_reason"] not in DATA_REASONS | {SkipReason.TAKEN_DOWN},
        )
        for row in rows
    ]


def skips_by_kind() -> list[tuple[str, str, int]]:
    """(kind, skip reason, count) of every skipped document (one GROUP BY)."""
    rows = Transfer.objects.filter(status=Status.SKIPPED).order_by().values_list("kind", "skip_reason").annotate(n=Count("id"))
    return sorted(rows)


def failures_by_kind() -> list[tuple[str, str, int]]:
    """(kind, error kind, count) of every failed document (one GROUP BY)."""
    rows = Transfer.objects.filter(status=Status.FAILED).order_by().values_list("kind", "error_kind").annotate(n=Count("id"))
    return sorted(rows)


def dashboard(*, now: dt.datetime | None = None, with_details: bool = True) -> Dashboard:
    """Everything the dashboard shows. ``with_details=False`` leaves out the
    failure groups and per-account rows (the polling endpoint needs neither)."""
    now = now or timezone.now()
    counts = counts_by_kind_and_status()  # the status bar and each kind's, from one GROUP BY
    by_status = transfers_by_status(counts)
    throughput = transfers_throughput(now=now)
    remaining = sum(by_status[status] for status in REMAINING)
    return Dashboard(
        by_status=by_status,
        throughput=throughput,
        eta=migration_eta(remaining=remaining, throughput=throughput),
        failures=failure_groups() if with_details else [],
        skips=skips_by_reason() if with_details else [],
        accounts=accounts_progress() if with_details else [],
        cluster=cluster_health(),
        at=now,
        limits=binding_limits(now=now, remaining=remaining),
        verification=verification_summary(now=now) if with_details else None,
        alerts=alerts_open() if with_details else [],
        kinds=kinds_progress(counts),
    )


@dataclass(frozen=True)
class RecordAsWritten:
    """The record the PDS holds for a document: ``value`` (JSON) and ``cid``,
    or ``problem`` saying why it could not be read."""

    value: dict | None = None
    cid: str = ""
    problem: str = ""


def transfer_record_as_written(transfer: Transfer) -> RecordAsWritten:
    """Read the document's record from the PDS (a public getRecord: no login).
    Fails soft: an unreachable PDS or a missing record becomes ``problem``."""
    if not (transfer.account_did and transfer.rkey):
        return RecordAsWritten(problem="No record has been written for this document yet.")
    # One attempt, no waiting: a console page must not hang on a slow PDS.
    policy = RetryPolicy(attempts=1, base_delay=0, max_delay=0, rate_limit_max_wait=0, low_water=0)
    try:
        stored = public_record_get(did=transfer.account_did, collection=_nsid(transfer.kind), rkey=transfer.rkey, policy=policy)
    except PdsError as error:
        return RecordAsWritten(problem=f"The PDS at {settings.PDS_URL} could not be read ({error.kind}): {error.message}")
    if stored is None:
        return RecordAsWritten(problem=f"The PDS has no record at {transfer.rkey} in {transfer.account_did}.")
    return RecordAsWritten(value=stored.value, cid=stored.cid)


def blob_url(*, did: str, cid: str) -> str:
    """Where the PDS serves a blob (its public sync.getBlob)."""
    return f"{settings.PDS_URL.rstrip('/')}/xrpc/com.atproto.sync.getBlob?{urlencode({'did': did, 'cid': cid})}"


def _nsid(kind: str) -> str:
    return KINDS[kind].nsid if kind in KINDS else settings.PAINTING_COLLECTION


def record_url(*, did: str, rkey: str, kind: str = "painting") -> str:
    """The record as JSON from the PDS (its public repo.getRecord)."""
    query = urlencode({"repo": did, "collection": _nsid(kind), "rkey": rkey})
    return f"{settings.PDS_URL.rstrip('/')}/xrpc/com.atproto.repo.getRecord?{query}"



@dataclass(frozen=True)
class VerificationSummary:
    """The last verification in one line, as the dashboard and the status
    report say it: "Verified 3 h 05 min ago: no differences.". ``state`` is
    "never", "clean", "drift", "failed" or "running"; ``latest`` is the
    verification the line is about, ``examples`` drift's first few."""

    state: str
    line: str
    latest: Verification | None = None
    counts: list[tuple[str, int]] = field(default_factory=list)  # (label, count)
    examples: list[dict] = field(default_factory=list)  # {kind, label, ref, did, rkey, detail}


def verification_summary(*, now: dt.datetime | None = None) -> VerificationSummary:
    """What the last verification found, and when. One or two queries."""
    now = now or timezone.now()
    latest = Verification.objects.order_by("-started_at", "-id").first()
    if latest is None:
        return VerificationSummary(
            "never", f"Never verified: the verification schedule compares everything every {settings.VERIFY_EVERY_HOURS} h "
            "(manage.py compare all does it at once).",
        )  # fmt: skip
    timeout = dt.timedelta(seconds=settings.Q_CLUSTER["timeout"])
    if latest.finished_at is None and latest.started_at > now - timeout:
        return VerificationSummary("running", f"A verification is running (started {duration_text(now - latest.started_at)} ago).{_before(latest, now)}", latest)
    if latest.finished_at is None or latest.error:
        error = latest.error or ABANDONED
        moment = latest.finished_at or latest.started_at
        return VerificationSummary("failed", f"The last verification failed {duration_text(now - moment)} ago: {error}{_before(latest, now)}", latest)
    return _finished(latest, now)


def verification_last_finished() -> Verification | None:
    """The last verification that ran to its end, clean or not."""
    return Verification.objects.filter(error="").exclude(finished_at=None).order_by("-finished_at", "-id").first()


def _finished(verification: Verification, now: dt.datetime) -> VerificationSummary:
    ago = duration_text(now - verification.finished_at)
    if not verification.differences:
        return VerificationSummary("clean", f"Verified {ago} ago: no differences.", verification)
    labels = {str(kind): kind.label for kind in DifferenceKind}
    n = verification.differences
    counts = [(labels.get(kind, kind), count) for kind, count in verification.counts.items()]
    examples = [{**example, "label": labels.get(example["kind"], example["kind"])} for example in verification.examples]
    return VerificationSummary("drift", f"Verified {ago} ago: {n} difference{'s' if n != 1 else ''}.", verification, counts, examples)


def _before(latest: Verification, now: dt.datetime) -> str:
    """" Before that: verified 1 d 02 h ago: no differences.", from the last
    verification that finished before ``latest``; "" when none did."""
    previous = (
        Verification.objects.filter(started_at__lt=latest.started_at, error="").exclude(finished_at=None)
        .order_by("-started_at", "-id").first()
    )  # fmt: skip
    if previous is None:
        return ""
    line = _finished(previous, now).line
    return f" Before that: {line[0].lower()}{line[1:]}"
