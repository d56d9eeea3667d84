"""GET /metrics: the console's state in Prometheus' text format.

Read at each scrape from the state table, as the dashboard reads it (the
same selectors, fewer of them), so the two always agree: documents by kind
and status, skips by reason, failures by error class, documents waiting for
a PDS rate limit and when it resets, the last verification, open alerts,
the job queue and its workers, and live sync. Gauges only: a value is what
the table holds now (Prometheus' ``rate()`` and ``increase()`` work on them
as on any gauge that only grows, such as the migrated count).
"""

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from django.utils import timezone

from migrator import selectors
from migrator.alerts import alerts_open
from migrator.models import Status, SyncCursor
from migrator.services.sync import CURSOR

CONTENT_TYPE = CONTENT_TYPE_LATEST


def _gauge(name: str, documentation: str, labels: tuple[str, ...] = (), rows=()) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=list(labels))
    for *values, value in rows:
        family.add_metric([str(label) for label in values], value)
    return family


def _one(name: str, documentation: str, value: float | None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation)
    if value is not None:  # absent, rather than a made-up 0, when there is nothing to tell
        family.add_metric([], value)
    return family


class StateCollector:
    """Each ``collect()`` reads the state table afresh."""

    def describe(self):
        return []  # nothing read when the registry is built, only at a scrape

    def collect(self):
        now = timezone.now()
        kinds = selectors.kinds_progress()
        yield _gauge(
            "migrator_documents", "Documents in the state table, by kind and status.", ("kind", "status"),
            [(kind.name, status, kind.by_status.get(status, 0)) for kind in kinds for status in Status.values],
        )  # fmt: skip
        yield _gauge("migrator_skipped_documents", "Skipped documents, by kind and reason.", ("kind", "reason"), selectors.skips_by_kind())
        yield _gauge(
            "migrator_failed_documents", "Failed documents (retryable), by kind and error kind (transient, permanent, rate_limited).",
            ("kind", "error_kind"), selectors.failures_by_kind(),
        )  # fmt: skip
        yield _gauge(
            "migrator_failure_group_documents", "Failed documents by error class, as the dashboard groups them (its 20 largest).",
            ("error_kind", "error"), [(group.error_kind, group.signature, group.count) for group in selectors.failure_groups()],
        )  # fmt: skip
        limits = selectors.binding_limits(now=now)
        yield _gauge("migrator_waiting_documents", "Documents waiting for a PDS rate limit to reset, by limit.", ("limit",), [(limit.name, limit.waiting) for limit in limits])
        yield _gauge(
            "migrator_rate_limit_reset_timestamp_seconds", "When each rate limit that documents wait for resets (Unix time).",
            ("limit",), [(limit.name, limit.resets_at.timestamp()) for limit in limits],
        )  # fmt: skip
        yield from self._verification(now)
        alerts = alerts_open()
        yield _one("migrator_alerts_open", "Alerts open now (drift, stuck work, a tripwire hold, ...).", len(alerts))
        yield _gauge("migrator_alert_open", "1 for each open alert, by its key.", ("key",), [(alert.key, 1) for alert in alerts])
        cluster = selectors.cluster_health()
        readable = not cluster.problem
        yield _one("migrator_cluster_state_readable", "1 when the job cluster's broker and cache could be read.", int(readable))
        yield _one("migrator_clusters", "Job clusters alive (from their heartbeats).", len(cluster.clusters) if readable else None)
        yield _one("migrator_cluster_workers", "Worker processes of the alive job clusters.", cluster.workers if readable else None)
        yield _one("migrator_job_queue_depth", "Jobs waiting in the broker's queue.", cluster.queued_jobs)
        yield from self._live_sync(now)

    def _verification(self, now):
        summary = selectors.verification_summary(now=now)
        last = selectors.verification_last_finished()
        finished = last.finished_at if last else None
        yield _one("migrator_verification_failing", "1 when the last verification failed or never finished.", int(summary.state == "failed"))
        yield _one(
            "migrator_verification_last_finished_timestamp_seconds", "When the last verification that finished did (Unix time).",
            finished.timestamp() if finished else None,
        )  # fmt: skip
        yield _one("migrator_verification_age_seconds", "Seconds since the last verification that finished.", (now - finished).total_seconds() if finished else None)
        yield _one("migrator_verification_differences", "Differences the last verification that finished found.", last.differences if last else None)

    def _live_sync(self, now):
        cursor = SyncCursor.objects.filter(name=CURSOR).values("synced_at", "ran_at").first() or {}
        synced_at, full_at = cursor.get("synced_at"), cursor.get("ran_at")
        yield _one("migrator_live_sync_last_run_timestamp_seconds", "When live sync last ran (Unix time).", synced_at.timestamp() if synced_at else None)
        yield _one("migrator_live_sync_lag_seconds", "Seconds since live sync last ran: how far behind MongoDB it can be.", (now - synced_at).total_seconds() if synced_at else None)
        yield _one("migrator_live_sync_last_full_read_timestamp_seconds", "When live sync last re-read all of MongoDB (Unix time).", full_at.timestamp() if full_at else None)


def exposition() -> bytes:
    """The metrics, read now, in Prometheus' text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector())
    return generate_latest(registry)
