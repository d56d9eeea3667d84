"""The console: the list of every kind's documents (paintings, moods, ...:
filter by kind, and the list shows what a person knows each kind by), its
actions, a document's page, and the dashboard (migrator.admin_views).

Every field is read-only; state changes only through the actions, which call
the same services as the management commands (migrator.services.*). Only
staff with ``migrator.run_migration`` see or run actions; other staff watch.
``Account`` holds secrets and is deliberately not registered.
"""

import functools
import json

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import Truncator

from migrator import admin_lifecycle, admin_views, selectors
from migrator.admin_views import STATUS_COLOURS
from migrator.kinds import KINDS
from migrator.models import TransferEvent, Transfer, Status
from migrator.services.compare import transfers_verify
from migrator.services.engine import transfers_enqueue, transfers_preview, transfers_recheck, transfers_retry, transfers_skip
from migrator.services.lifecycle import transfers_republish, transfers_unpublish
from migrator.source import SourceError

DRY_RUN_LIMIT = 25  # a dry run fetches every image: keep the page quick


def actor_for(request: HttpRequest) -> str:
    return f"staff:{request.user.get_username()}"


def selection_of(request: HttpRequest) -> dict:
    """The changelist selection an intermediate page posts back: the ticked
    ids, or "all that match the filters" (then the page's URL keeps them)."""
    return {
        "select_across": request.POST.get("select_across") == "1",
        "ids": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
    }


def status_badge(status: str) -> str:
    return format_html(
        '<span class="painting-status" style="background:{}">{}</span>',
        STATUS_COLOURS.get(status, "#6b7280"),
        Status(status).label if status in Status.values else status,
    )


def plural(count: int, noun: str = "painting") -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def noun_for(rows: QuerySet):
    """How to count what ``rows`` are (asked before an action changes them):
    a function giving "2 paintings", "1 mood", "3 documents" (several kinds)."""
    names = set(rows.order_by().values_list("kind", flat=True).distinct()[:2])
    kind = KINDS.get(names.pop()) if len(names) == 1 else None
    if kind is None:
        return lambda count: plural(count, "painting" if not names else "document")
    return lambda count: f"{count} {kind.name if count == 1 else kind.plural}"


class NarrowSortPaginator(Paginator):
    """Sorts and slices only the ids, then fetches the page's rows.

    Without an index matching the list's order, SQLite sorts every matching
    row in full to return 100 of them (~250 ms at 100,000 rows); sorting the
    ids alone costs a tenth of that. One more query, whatever the row count.
    """

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        ids = list(self.object_list.values_list("pk", flat=True)[bottom:top])
        rows = {row.pk: row for row in self.object_list.order_by().filter(pk__in=ids)}
        return self._get_page([rows[pk] for pk in ids if pk in rows], number, self)


class BlankFieldFilter(admin.SimpleListFilter):
    """Filters on whether ``field`` is blank: "yes" shows the rows where it
    is blank when ``yes_is_blank``, else the rows where it is not."""

    field: str
    yes_is_blank: bool
    labels: tuple[str, str]

    def lookups(self, request, model_admin):
        return [("yes", self.labels[0]), ("no", self.labels[1])]

    def queryset(self, request, queryset):
        if self.value() not in ("yes", "no"):
            return queryset
        blank = (self.value() == "yes") == self.yes_is_blank
        return queryset.filter(**{self.field: ""}) if blank else queryset.exclude(**{self.field: ""})


class KindFilter(admin.SimpleListFilter):
    """The kind of record: paintings, moods, ... (the kinds the table has)."""

    title, parameter_name = "kind", "kind"

    def lookups(self, request, model_admin):
        present = kinds_present(request)
        return [(kind.name, kind.plural.capitalize()) for kind in KINDS.values() if kind.name in present]

    def queryset(self, request, queryset):
        return queryset.filter(kind=self.value()) if self.value() in KINDS else queryset


def kinds_present(request: HttpRequest) -> set[str]:
    """The kinds the state table has, asked once per request."""
    if not hasattr(request, "_kinds_present"):
        request._kinds_present = selectors.kinds_present()
    return request._kinds_present


@functools.cache
def label_column_for(kind_name: str):
    """The list's column of what a person knows a document by, headed with
    what the kind calls it ("mood", "code", "slug")."""

    @admin.display(description=KINDS[kind_name].label_name, ordering="label")
    def label_column(transfer: Transfer) -> str:
        return format_html('<span title="{}">{}</span>', kind_name, Truncator(transfer.label or transfer.ref).chars(80))

    return label_column


def _shown_value(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return Truncator(str(value)).chars(2000)


@functools.cache
def content_column_for(name: str):
    """The list's column of one of a kind's own fields (a painting's code)."""

    @admin.display(description=name)
    def column(transfer: Transfer) -> str:
        value = transfer.content.get(name, "") if isinstance(transfer.content, dict) else ""
        return Truncator(str(value)).chars(80)

    column.__name__ = name
    return column


def kind_shown(request: HttpRequest):
    """The kind the changelist is filtered to, or None."""
    name = request.GET.get(KindFilter.parameter_name, "")
    return KINDS.get(name)


class AnonymousFilter(BlankFieldFilter):
    title, parameter_name = "owner", "anonymous"
    field, yes_is_blank, labels = "owner", True, ("Anonymous", "A user")


class HasErrorFilter(BlankFieldFilter):
    title, parameter_name = "error", "has_error"
    field, yes_is_blank, labels = "last_error", False, ("Has an error", "No error")


class AccountFilter(admin.SimpleListFilter):
    """An account typed in (a DID or an @handle), not a list of links: there
    are a thousand accounts, and listing them would cost a GROUP BY per page."""

    title = "account"
    parameter_name = "account"
    template = "admin/migrator/account_filter.html"

    def lookups(self, request, model_admin):
        return []

    def has_output(self) -> bool:
        return True

    def queryset(self, request, queryset):
        value = (self.value() or "").strip()
        if not value:
            return queryset
        if value.startswith("did:"):
            return queryset.filter(account_did=value)
        return queryset.filter(owner_handle=value.removeprefix("@"))

    def choices(self, changelist):
        others = {key: value for key, value in changelist.params.items() if key not in (self.parameter_name, "p")}
        yield {
            "value": self.value() or "",
            "parameter_name": self.parameter_name,
            "others": sorted(others.items()),
            "clear_url": changelist.get_query_string(remove=[self.parameter_name]),
        }


class ReadOnly:
    """State changes only through actions (and so through the services):
    nobody adds, edits or deletes rows in the admin."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class TransferEventInline(ReadOnly, admin.TabularInline):
    model = TransferEvent
    verbose_name = "event"
    verbose_name_plural = "Audit trail (newest first)"
    fields = ("at", "transition", "actor", "message")
    readonly_fields = fields
    ordering = ("-at", "-id")
    extra = 0
    can_delete = False
    show_change_link = False

    @admin.display(description="change")
    def transition(self, event: TransferEvent) -> str:
        if event.from_status == event.to_status:
            return format_html("{} <small>(note)</small>", status_badge(event.to_status))
        return format_html("{} → {}", status_badge(event.from_status) if event.from_status else "∅", status_badge(event.to_status))



@admin.register(Transfer)
class TransferAdmin(ReadOnly, admin.ModelAdmin):
    list_display = (
        "badge",
        "thumbnail",
        "kind_column",
        "owner_column",
        "label_column",
        "when",
        "attempts",
        "short_error",
        "record_link",
    )
    list_display_links = ("label_column",)
    list_filter = (
        KindFilter,
        "status",
        "skip_reason",
        "error_kind",
        AnonymousFilter,
        "nuked",
        HasErrorFilter,
        AccountFilter,
        "when",
    )
    # A label is what a person knows a document by (a painting's slug, a
    # mood's text, a program's $code); a code is a painting's, program's or
    # tape's, kept in its content.
    search_fields = ("=ref", "=content__code", "label", "owner_handle", "=rkey", "=account_did")
    search_help_text = "Slug, text or handle (contains); code, ref, rkey or DID (exact)."
    list_per_page = 100
    paginator = NarrowSortPaginator
    # The full count is a scan of 100,000 rows on every page: show "x results"
    # of the filtered set only.
    show_full_result_count = False
    list_select_related = False
    actions = ("migrate_selected", "retry_failed", "recheck_skipped", "dry_run", "skip_with_reason", "take_down", "republish", "verify_against_pds")
    inlines = (TransferEventInline,)
    fieldsets = (
        ("Document", {"fields": ("summary", "source_fields")}),
        ("Migration", {"fields": ("badge", "skip_reason", "skip_detail", "error_with_class", "claimed_by", "claimed_at", "migrated_at")}),
        ("Record", {"fields": ("record_summary", "record_as_written", "written_by")}),
        ("After the backfill", {"fields": ("unpublished_at", "unpublished_by", "unpublished_reason", "gone_since")}),
        ("Bookkeeping", {"classes": ("collapse",), "fields": ("created_at", "updated_at")}),
    )

    # --- Permissions: read-only for everyone (ReadOnly); actions need run_migration.


    def has_run_migration_permission(self, request) -> bool:
        return request.user.has_perm("migrator.run_migration")

    def changelist_view(self, request, extra_context=None):
        # Without the permission there are no actions to pick; a POST naming
        # one anyway is refused outright rather than silently ignored.
        if request.method == "POST" and "action" in request.POST and not self.has_run_migration_permission(request):
            raise PermissionDenied
        return super().changelist_view(request, {**self.list_titles(request), **(extra_context or {})})

    def list_titles(self, request) -> dict:
        """A list filtered to one kind is titled with it ("Moods", "Select
        mood to migrate"); the list of every kind with the table's name."""
        kind = kind_shown(request)
        noun, plural = (kind.name, kind.plural) if kind else (self.opts.verbose_name, self.opts.verbose_name_plural)
        verb = "migrate" if self.has_run_migration_permission(request) else "view"
        return {"title": f"Select {noun} to {verb}", "list_name": plural}

    def get_readonly_fields(self, request, obj=None):
        return [name for _, options in self.fieldsets for name in options["fields"]]

    def get_fieldsets(self, request, obj=None):
        """The first section is named after the document's kind."""
        if obj is None:
            return self.fieldsets
        return ((obj.kind.capitalize(), self.fieldsets[0][1]), *self.fieldsets[1:])

    def get_list_display(self, request):
        """A kind's list (or the list of a table that holds one kind) shows
        what a person knows it by (a painting's slug, a mood's text, a
        program's code), headed as the kind calls it, and the fields the
        kind lists beside it (a painting's code); the list of every kind
        says each row's kind."""
        kind = kind_shown(request)
        present = kinds_present(request)
        if kind is None and len(present) == 1 and (only := next(iter(present))) in KINDS:
            kind = KINDS[only]
        if kind is None:
            return list(self.list_display)
        fields = [content_column_for(name) for name in kind.list_fields]
        columns = ["badge", "owner_column", *fields, label_column_for(kind.name), "when", "attempts", "short_error", "record_link"]
        return columns if kind.blob_field is None else [columns[0], "thumbnail", *columns[1:]]

    def get_list_display_links(self, request, list_display):
        return [column for column in list_display if getattr(column, "__name__", column) == "label_column"]

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("dashboard/", view(admin_views.dashboard_view), name="migrator_dashboard"),
            path("dashboard/status.json", view(admin_views.dashboard_json), name="migrator_dashboard_json"),
            path("dashboard/retry-group/", view(admin_views.retry_group), name="migrator_retry_group"),
            path("dashboard/recheck-skipped/", view(admin_views.recheck_skipped), name="migrator_recheck_skipped"),
            path("dashboard/removals/", view(admin_lifecycle.removals_view), name="migrator_removals"),
            path("dashboard/undo/", view(admin_lifecycle.undo_view), name="migrator_undo"),
            path("dashboard/rewrite/", view(admin_lifecycle.rewrite_view), name="migrator_rewrite"),
            *super().get_urls(),
        ]

    # --- Changelist columns: each reads only its own row (no query per row).

    @admin.display(description="status", ordering="status")
    def badge(self, transfer: Transfer) -> str:
        return status_badge(transfer.status)

    @admin.display(description="kind", ordering="kind")
    def kind_column(self, transfer: Transfer) -> str:
        return transfer.kind

    @admin.display(description="what", ordering="label")
    def label_column(self, transfer: Transfer) -> str:
        label = transfer.label or transfer.ref
        name = KINDS[transfer.kind].label_name if transfer.kind in KINDS else "label"
        return format_html('<span title="{}">{}</span>', name, Truncator(label).chars(80))

    @admin.display(description="owner", ordering="owner_handle")
    def owner_column(self, transfer: Transfer) -> str:
        if not transfer.owner:
            return mark_safe('<span class="painting-muted">anonymous</span>')
        if not transfer.owner_handle:
            return format_html('<span class="painting-muted" title="{}">no handle</span>', transfer.owner)
        return f"@{transfer.owner_handle}"

    @admin.display(description="error")
    def short_error(self, transfer: Transfer) -> str:
        if not transfer.last_error:
            return ""
        first_line = transfer.last_error.strip().splitlines()[0] if transfer.last_error.strip() else ""
        return format_html(
            '<span class="painting-error" title="{}">{}{}</span>',
            transfer.last_error[:1000],
            f"[{transfer.error_kind}] " if transfer.error_kind else "",
            Truncator(first_line).chars(70),
        )

    @admin.display(description="thumbnail")
    def thumbnail(self, transfer: Transfer) -> str:
        if not (transfer.blob_cid and transfer.account_did):
            return ""
        return format_html(
            '<img class="painting-thumb" src="{}" width="48" height="48" loading="lazy" alt="">',
            selectors.blob_url(did=transfer.account_did, cid=transfer.blob_cid),
        )

    @admin.display(description="record")
    def record_link(self, transfer: Transfer) -> str:
        if not (transfer.rkey and transfer.account_did and transfer.record_uri):
            return ""
        return format_html(
            '<a href="{}" title="{}" target="_blank" rel="noopener">{}</a>',
            selectors.record_url(did=transfer.account_did, rkey=transfer.rkey, kind=transfer.kind),
            transfer.record_uri,
            transfer.rkey,
        )

    # --- A document's page sections.

    @admin.display(description="document")
    def summary(self, transfer: Transfer) -> str:
        kind = KINDS.get(transfer.kind)
        fields = [(name, transfer.content.get(name, "")) for name in (kind.list_fields if kind else ())]
        fields.append((kind.label_name if kind else "label", transfer.label))
        return format_html(
            "{} · {} · {} · ref <code>{}</code>",
            transfer.kind,
            self.owner_column(transfer),
            format_html_join(" · ", "{} <code>{}</code>", ((name, Truncator(str(value)).chars(120) or "—") for name, value in fields)),
            transfer.ref,
        )

    @admin.display(description="source document (as mirrored from MongoDB)")
    def source_fields(self, transfer: Transfer) -> str:
        """The row's columns as MongoDB's fields, then the kind's own
        (``content``)."""
        kind = KINDS.get(transfer.kind)
        rows = [
            ("kind", transfer.kind),
            ("_id", transfer.ref),
            ("user", transfer.owner or "(anonymous)"),
            ("handle", f"@{transfer.owner_handle}" if transfer.owner_handle else ""),
            ("account DID", transfer.account_did),
            ("when", transfer.when.isoformat() if transfer.when else "(not a date)"),
        ]
        if kind is not None and kind.deleted_flag:
            rows.append((kind.deleted_flag, "yes" if transfer.nuked else "no"))
        content = transfer.content if isinstance(transfer.content, dict) else {}
        rows += [(name, _shown_value(value)) for name, value in sorted(content.items())]
        return format_html(
            '<table class="painting-fields">{}</table>',
            format_html_join("", "<tr><th>{}</th><td><code>{}</code></td></tr>", rows),
        )

    @admin.display(description="error")
    def error_with_class(self, transfer: Transfer) -> str:
        if not transfer.last_error:
            return format_html("none · {}", plural(transfer.attempts, "attempt"))
        return format_html(
            '<strong>{}</strong> · {}<pre class="painting-pre">{}</pre>',
            transfer.get_error_kind_display() or "unclassified",
            plural(transfer.attempts, "attempt"),
            transfer.last_error,
        )

    @admin.display(description="record")
    def record_summary(self, transfer: Transfer) -> str:
        if not transfer.rkey:
            return "not written yet"
        thumbnail = ""
        if transfer.blob_cid:
            thumbnail = format_html(
                '<br><img class="painting-thumb-large" src="{}" alt="thumbnail"> {} bytes {} ({})',
                selectors.blob_url(did=transfer.account_did, cid=transfer.blob_cid),
                transfer.blob_size or "?",
                transfer.blob_mime,
                transfer.blob_fallback or "as is",
            )
        return format_html(
            "rkey <code>{}</code> · uri <code>{}</code> · cid <code>{}</code> {}{}",
            transfer.rkey,
            transfer.record_uri or "—",
            transfer.record_cid or "—",
            self.record_link(transfer),
            thumbnail,
        )

    @admin.display(description="record as the PDS holds it")
    def record_as_written(self, transfer: Transfer) -> str:
        if transfer.status != Status.MIGRATED:
            return "Not migrated yet: no record was written for it."
        record = selectors.transfer_record_as_written(transfer)
        if record.problem:
            return format_html('<span class="painting-error">{}</span>', record.problem)
        note = "" if record.cid == transfer.record_cid else format_html(
            '<p class="painting-error">The PDS holds cid {}, the state table says {}.</p>', record.cid, transfer.record_cid
        )
        return format_html('{}<pre class="painting-pre">{}</pre>', note, json.dumps(record.value, indent=2, sort_keys=True))

    # --- Actions: one service call each, a one-line report of counts.

    @admin.action(description="Migrate selected", permissions=["run_migration"])
    def migrate_selected(self, request, transfers: QuerySet):
        counted = noun_for(transfers)
        selected = transfers.count()
        queued = transfers_enqueue(transfers, actor=actor_for(request))
        self._report(request, f"Queued {counted(queued)}", selected - queued, "were not pending or failed")

    @admin.action(description="Retry failed", permissions=["run_migration"])
    def retry_failed(self, request, transfers: QuerySet):
        counted = noun_for(transfers)
        selected = transfers.count()
        queued = transfers_retry(transfers, actor=actor_for(request))
        self._report(request, f"Queued {counted(queued)} for another try", selected - queued, "had not failed")

    @admin.action(description="Re-check skipped (image missing, account incomplete…)", permissions=["run_migration"])
    def recheck_skipped(self, request, transfers: QuerySet):
        counted = noun_for(transfers)
        selected = transfers.count()
        queued = transfers_recheck(transfers, actor=actor_for(request))
        why = "were not skipped, or were skipped for MongoDB's data (that lifts when the data is fixed)"
        self._report(request, f"Queued {counted(queued)} to be checked again", selected - queued, why)

    @admin.action(description="Dry run (preview, then migrate)", permissions=["run_migration"])
    def dry_run(self, request, transfers: QuerySet):
        selected = transfers.count()
        previews = transfers_preview(list(transfers.order_by("id")[:DRY_RUN_LIMIT]))
        outcomes = {outcome: sum(1 for p in previews if p.outcome == outcome) for outcome in ("migrate", "skip", "fail")}
        context = {
            **self.admin_site.each_context(request),
            "title": "Dry run: what migrating would write",
            "opts": self.model._meta,
            "previews": [admin_views.preview_context(preview) for preview in previews],
            "outcomes": outcomes,
            "selected": selected,
            "counted": noun_for(transfers)(selected),
            "limit": DRY_RUN_LIMIT,
            "selection": selection_of(request),
        }
        return TemplateResponse(request, "admin/migrator/dry_run.html", context)

    @admin.action(description="Skip with reason…", permissions=["run_migration"])
    def skip_with_reason(self, request, transfers: QuerySet):
        counted = noun_for(transfers)
        detail = request.POST.get("skip_detail", "").strip()
        if "apply" in request.POST and detail:
            selected = transfers.count()
            skipped = transfers_skip(transfers, actor=actor_for(request), detail=detail[:500])
            self._report(request, f"Skipped {counted(skipped)}", selected - skipped, "were migrated, running or already skipped")
            return None
        return self._reason_form(
            request, transfers, template="skip_form.html", action="skip_with_reason", field="skip_detail",
            verb="Skip", missing_text="Say why they are skipped.",
        )  # fmt: skip

    @admin.action(description="Take down (unpublish) with reason…", permissions=["run_migration"])
    def take_down(self, request, transfers: QuerySet):
        counted = noun_for(transfers)
        reason = request.POST.get("reason", "").strip()
        if "apply" in request.POST and reason:
            selected = transfers.count()
            ids = transfers_unpublish(transfers, actor=actor_for(request), reason=reason)
            done = f"Took down {counted(selected - transfers.filter(unpublished_at=None).count())}"
            how = admin_lifecycle.transfers_run_now(ids, actor=actor_for(request)) if ids else "none had a record"
            self.message_user(request, f"{done}: {how}. They stay unpublished until republished.", messages.SUCCESS)
            return None
        return self._reason_form(
            request, transfers, template="takedown_form.html", action="take_down", field="reason",
            verb="Take down", missing_text="Say why they are taken down.",
        )  # fmt: skip

    @admin.action(description="Republish what was taken down", permissions=["run_migration"])
    def republish(self, request, transfers: QuerySet):
        counted = noun_for(transfers)
        selected = transfers.count()
        ids = transfers_republish(transfers, actor=actor_for(request))
        transfers_enqueue(Transfer.objects.filter(id__in=ids), actor=actor_for(request))
        self._report(request, f"Republished {counted(len(ids))}: queued to be migrated again under the same keys", selected - len(ids), "were not taken down")

    @admin.action(description="Verify against the PDS", permissions=["run_migration"])
    def verify_against_pds(self, request, transfers: QuerySet):
        counted = noun_for(transfers)
        try:
            report = transfers_verify(transfers, actor=actor_for(request))
        except SourceError as error:
            self.message_user(request, f"MongoDB could not be read, nothing was verified: {error}", messages.ERROR)
            return
        differing = report.checked - report.matching
        level = messages.WARNING if report.differences else messages.SUCCESS
        self.message_user(request, f"Checked {counted(report.checked)}: {report.matching} match the PDS, {differing} differ.", level)
        for difference in report.differences[:10]:
            self.message_user(request, difference, messages.WARNING)
        if len(report.differences) > 10:
            self.message_user(request, f"… and {len(report.differences) - 10} more differences (see manage.py compare all).", messages.WARNING)

    def _reason_form(self, request, transfers: QuerySet, *, template: str, verb: str, **form) -> TemplateResponse:
        """The page an action that needs a reason shows first (and again,
        saying so, when the reason was left empty), titled with what it
        does to what: "Skip 3 moods"."""
        selected = transfers.count()
        counted = noun_for(transfers)(selected)
        context = {
            **self.admin_site.each_context(request),
            "title": f"{verb} {counted}",
            "opts": self.model._meta,
            "transfers": transfers.order_by("id")[:200],
            "selected": selected,
            "counted": counted,
            "verb": verb,
            "selection": selection_of(request),
            "missing": "apply" in request.POST,
            **form,
        }
        return TemplateResponse(request, f"admin/migrator/{template}", context)

    def _report(self, request, done: str, left_out: int, why: str) -> None:
        message = done if not left_out else f"{done}; {left_out} {why}"
        self.message_user(request, message + ".", messages.SUCCESS if not left_out else messages.WARNING)
