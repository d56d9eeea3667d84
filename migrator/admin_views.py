"""The console's own admin pages: the dashboard, its polling endpoint, the
retry of a failure group, and the dry-run preview's per-document context.
Mounted by TransferAdmin.get_urls (behind admin_site.admin_view)."""

import base64
import json

from django.contrib import messages
from django.contrib.admin import site
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_POST

from migrator import alerts, selectors
from migrator.kinds import KINDS
from migrator.models import Transfer, Status
from migrator.selectors import duration_text
from migrator.services import lifecycle
from migrator.services.engine import transfers_recheck, transfers_retry

STATUS_COLOURS = {
    Status.PENDING: "#6b7280",
    Status.QUEUED: "#2563eb",
    Status.RUNNING: "#7c3aed",
    Status.MIGRATED: "#15803d",
    Status.SKIPPED: "#b45309",
    Status.FAILED: "#b91c1c",
    Status.WAITING: "#0e7490",
}

REFRESH_SECONDS = 5


def _require_view(request: HttpRequest) -> None:
    if not request.user.has_perm("migrator.view_transfer"):
        raise PermissionDenied


def dashboard_view(request: HttpRequest) -> HttpResponse:
    _require_view(request)
    board = selectors.dashboard()
    total = board.total or 1
    bar = [
        {
            "status": status,
            "label": Status(status).label,
            "count": count,
            "percent": 100.0 * count / total,
            "colour": STATUS_COLOURS[status],
        }
        for status, count in board.by_status.items()
    ]
    context = {
        **site.each_context(request),
        "title": "Migration dashboard",
        "opts": Transfer._meta,
        "board": board,
        "bar": bar,
        "done_percent": 100.0 * (board.by_status[Status.MIGRATED] + board.by_status[Status.SKIPPED]) / total,
        "can_run": request.user.has_perm("migrator.run_migration"),
        # What the figures count: one kind's documents by its plural (transfers, moods), several kinds' as documents.
        "noun": board.kinds[0].plural if len(board.kinds) == 1 else "documents",
        "refresh_seconds": REFRESH_SECONDS,
        "eta_text": duration_text(board.eta),
        "status": status_json(board),
        "after": after_backfill(),
        "alert_destinations": alerts.alert_destinations(),
    }
    return TemplateResponse(request, "admin/migrator/dashboard.html", context)


def after_backfill() -> dict:
    """What the dashboard shows of life after the backfill: the removal
    hold, records of an older shape, take-downs and deletions (two queries)."""
    hold = lifecycle.removal_hold()
    counts = lifecycle.after_backfill_counts()
    return {
        "hold": hold,
        "hold_kind": KINDS.get(hold.kind) if hold else None,
        "stale_shape": sum(counts.stale_shape.values()),
        "taken_down": counts.taken_down,
        "gone": counts.gone,
    }


def dashboard_json(request: HttpRequest) -> JsonResponse:
    """The few figures the dashboard polls while a migration runs."""
    _require_view(request)
    return JsonResponse(status_json(selectors.dashboard(with_details=False)))


def status_json(board: selectors.Dashboard) -> dict:
    return {**board.as_json(), "eta_text": duration_text(board.eta)}


@require_POST
def retry_group(request: HttpRequest) -> HttpResponse:
    """Retry every failed document of one failure group (selectors.failure_groups)."""
    if not request.user.has_perm("migrator.run_migration"):
        raise PermissionDenied
    key = request.POST.get("group", "")
    transfers = selectors.failure_group_transfers(key)
    found = transfers.count()
    queued = transfers_retry(transfers, actor=f"staff:{request.user.get_username()}")
    if not found:
        messages.warning(request, "No failed documents are left in that group.")
    else:
        message = f"Queued {queued} failed document{'' if queued == 1 else 's'} of the group for another try"
        left_out = found - queued
        messages.success(request, message + (f"; {left_out} moved meanwhile." if left_out else "."))
    return redirect("admin:migrator_dashboard")


@require_POST
def recheck_skipped(request: HttpRequest) -> HttpResponse:
    """Queue every document skipped for one reason to be looked at again
    (an image that was missing, an account completed since)."""
    if not request.user.has_perm("migrator.run_migration"):
        raise PermissionDenied
    reason = request.POST.get("reason", "")
    queued = transfers_recheck(Transfer.objects.filter(status=Status.SKIPPED, skip_reason=reason), actor=f"staff:{request.user.get_username()}")
    if queued:
        messages.success(request, f"Queued {queued} skipped document{'' if queued == 1 else 's'} to be checked again.")
    else:
        messages.warning(request, "No documents skipped for that reason can be re-checked (a skip that comes from MongoDB's data lifts when the data is fixed).")
    return redirect("admin:migrator_dashboard")


def preview_context(preview) -> dict:
    """What the dry-run page shows of one engine Preview: the record as
    indented JSON, the thumbnail as a data: URI, the validation result."""
    thumbnail = preview.thumbnail
    data_uri = ""
    if thumbnail is not None:
        data_uri = f"data:{thumbnail.mime_type};base64,{base64.b64encode(thumbnail.content).decode()}"
    return {
        "transfer": preview.transfer,
        "outcome": preview.outcome,
        "message": preview.message,
        "problems": preview.problems,
        "record_json": json.dumps(preview.record, indent=2, sort_keys=True, default=str) if preview.record is not None else "",
        "thumbnail": thumbnail,
        "thumbnail_uri": data_uri,
    }
