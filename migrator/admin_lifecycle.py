"""The console's pages for life after the backfill: the removals the
tripwire holds, undoing a run, and rewriting records of an older shape.
Each shows what would change, computed by the same code as the change,
and changes it only when a person with ``migrator.run_migration`` confirms.
Mounted by TransferAdmin.get_urls (behind admin_site.admin_view)."""

import json

from django.contrib import messages
from django.contrib.admin import site
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.template.response import TemplateResponse
from django.utils.dateparse import parse_datetime
from pymongo.errors import PyMongoError

from migrator import pds, source
from migrator.kinds import KINDS, PAINTING, RecordKind
from migrator.models import Transfer
from migrator.services import engine, lifecycle

SHOWN = 200  # rows listed on a confirmation page; the count covers them all
RUN_NOW = 100  # removals made within the request; more are queued as jobs


def actor_for(request: HttpRequest) -> str:
    return f"staff:{request.user.get_username()}"


def _require(request: HttpRequest, permission: str) -> None:
    if not request.user.has_perm(f"migrator.{permission}"):
        raise PermissionDenied


def _page(request: HttpRequest, template: str, title: str, **context) -> TemplateResponse:
    return TemplateResponse(
        request, template, {**site.each_context(request), "title": title, "opts": Transfer._meta,
                            "can_run": request.user.has_perm("migrator.run_migration"), **context},
    )  # fmt: skip


def transfers_run_now(ids: list[int], *, actor: str) -> str:
    """Let the engine act on ``ids`` at once (a take-down should not wait
    for a cluster), or queue them when there are many. Says which."""
    if len(ids) > RUN_NOW:
        queued = engine.transfers_enqueue(Transfer.objects.filter(id__in=ids), actor=actor)
        return f"{queued} queued as jobs"
    result = engine.BatchResult()
    for batch in engine.batches_for(Transfer.objects.filter(id__in=ids, status__in=engine.RUNNABLE)):
        result.add(engine.transfers_migrate(batch, actor=actor))
    return f"{sum(result.skipped.values())} removed or skipped now, {sum(result.failed.values())} failed (retried by the schedule)"


def kind_asked(request: HttpRequest, default: RecordKind = PAINTING) -> RecordKind:
    """The kind a page is for (``?kind=mood``), the painting by default."""
    return KINDS.get((request.POST if request.method == "POST" else request.GET).get("kind", ""), default)


def removals_view(request: HttpRequest) -> HttpResponse:
    """The removals the tripwire holds for a kind (``?kind=``, the open
    hold's by default): every document MongoDB no longer has, looked up
    now, and a confirm button bound to exactly that set."""
    _require(request, "view_transfer")
    hold = lifecycle.removal_hold()
    kind = kind_asked(request, default=KINDS.get(hold.kind, PAINTING) if hold else PAINTING)
    try:
        missing = [row for batch in lifecycle.transfers_missing(kind=kind) for row in batch]
    except (source.SourceError, PyMongoError) as error:  # out of reach: say so on the page
        messages.error(request, f"MongoDB could not be read ({type(error).__name__}); nothing is shown or removed.")
        return redirect("admin:migrator_dashboard")
    digest = lifecycle.removals_digest([row.id for row in missing])
    if request.method == "POST":
        _require(request, "run_migration")
        confirmed = lifecycle.removal_hold_confirm(digest=request.POST.get("digest", ""), actor=actor_for(request), kind=kind)
        if confirmed.changed:
            messages.warning(request, "What MongoDB is missing changed since the page was shown: nothing was removed. Look again.")
            return redirect(f"{reverse('admin:migrator_removals')}?kind={kind.name}")
        ids = list(Transfer.objects.filter(id__in=[row.id for row in missing]).values_list("id", flat=True))
        how = transfers_run_now(ids, actor=actor_for(request))
        messages.success(request, f"Confirmed the removal of {confirmed.removing} {kind.plural}' records: {how}.")
        return redirect("admin:migrator_dashboard")
    return _page(
        request, "admin/migrator/removals.html", "Removals held by the tripwire",
        hold=lifecycle.removal_hold(kind=kind), missing=missing[:SHOWN], count=len(missing), digest=digest, kind=kind,
    )  # fmt: skip


def undo_view(request: HttpRequest) -> HttpResponse:
    """Undo a run: pick a run (or an actor and a time window), see every
    document whose record it wrote, confirm with a reason. The records are
    removed and their keys cleared; the documents stay taken down until
    staff republish them."""
    _require(request, "view_transfer")
    data = request.POST if request.method == "POST" else request.GET
    run, actor = data.get("run", "").strip(), data.get("actor", "").strip()
    since, until = parse_datetime(data.get("since", "") or "") if data.get("since") else None, None
    if data.get("until"):
        until = parse_datetime(data["until"])
    transfers = lifecycle.transfers_written_by(run=run, actor=actor, since=since, until=until) if (run or actor) else None
    if request.method == "POST" and transfers is not None:
        _require(request, "run_migration")
        reason = data.get("reason", "").strip()
        if not reason or data.get("count") != str(transfers.count()):
            messages.warning(request, "Give a reason, and confirm what is listed (it changed since the page was shown)." if reason else "Give a reason.")
        else:
            label = run or f"{actor} between {data.get('since') or 'the start'} and {data.get('until') or 'now'}"
            ids = lifecycle.transfers_unpublish(transfers, actor=actor_for(request), reason=f"Undo of {label}: {reason}")
            messages.success(request, f"Took down {len(ids)} documents written by {label}: {transfers_run_now(ids, actor=actor_for(request))}.")
            return redirect("admin:migrator_dashboard")
    return _page(
        request, "admin/migrator/undo.html", "Undo a run",
        runs=lifecycle.runs_recent(), run=run, actor=actor, since=data.get("since", ""), until=data.get("until", ""),
        transfers=transfers.order_by("id")[:SHOWN] if transfers is not None else None, count=transfers.count() if transfers is not None else 0,
    )  # fmt: skip


def rewrite_view(request: HttpRequest) -> HttpResponse:
    """Records of a kind (``?kind=``; the first kind with any by default)
    written in an older shape: how many of each kind, one before and after,
    and the button that rewrites them in place."""
    _require(request, "view_transfer")
    stale = lifecycle.after_backfill_counts().stale_shape
    first = next((KINDS[name] for name, count in stale.items() if count), PAINTING)
    kind = kind_asked(request, default=first)
    if request.method == "POST":
        _require(request, "run_migration")
        try:
            ids = lifecycle.transfers_reshape(actor=actor_for(request), kind=kind)
        except lifecycle.LexiconNotPublished as error:
            messages.error(request, str(error))
            return redirect(f"{reverse('admin:migrator_rewrite')}?kind={kind.name}")
        except pds.PdsError as error:
            messages.error(request, f"The published lexicon could not be read: {error}")
            return redirect(f"{reverse('admin:migrator_rewrite')}?kind={kind.name}")
        queued = engine.transfers_enqueue(Transfer.objects.filter(id__in=ids), actor=actor_for(request))
        messages.success(request, f"Queued {queued} records to be rewritten under their keys (thumbnails kept where the image is the same).")
        return redirect("admin:migrator_dashboard")
    example = lifecycle.stale_shape_example(kind=kind)
    return _page(
        request, "admin/migrator/rewrite.html", "Records of an older shape",
        count=stale[kind.name], example=example, kind=kind,
        others=[(KINDS[name], count) for name, count in stale.items() if count and name != kind.name],
        before=json.dumps(example.before, indent=2, sort_keys=True) if example and example.before else "",
        after=json.dumps(example.after, indent=2, sort_keys=True, default=str) if example else "",
    )  # fmt: skip
