"""The end of one document's attempt: migrated with its record, skipped
with the reason, failed with the error (retryable), waiting for a rate
limit's reset, or left to the worker that took over its claim."""

import logging

from django.db.models import F
from django.utils import timezone

from migrator import pds
from migrator.failures import error_signature
from migrator.kinds import RecordKind
from migrator.models import ErrorKind, Transfer, RateLimitWindow, SkipReason, Status
from migrator.services.state import events_add, transfer_note, transfer_transition

from .work import BatchResult, Outcome, Work, written_for

log = logging.getLogger("migrator.services.engine")


# What a row's record is checked against when the batch finishes: an edit
# in MongoDB, a deletion found or a take-down that landed meanwhile sends
# the document back to pending instead of migrated.
UNCHANGED_WHILE_RUNNING = ("source_fingerprint", "gone_since", "unpublished_at")


def finish(row: Transfer, outcome: Outcome, *, actor: str, result: BatchResult) -> None:
    """End a document's attempt as skipped (with its reason) or failed
    (with its error, retryable)."""
    if outcome.waiting is not None:
        wait(row, outcome, actor=actor, result=result)
    elif outcome.skip_reason:
        if end(row, to=Status.SKIPPED, actor=actor, result=result, message=f"Skipped: {outcome.message}",
                skip_reason=outcome.skip_reason, skip_detail=outcome.message[:500]):  # fmt: skip
            result.skipped[outcome.skip_reason] += 1
    else:
        kind = outcome.kind or ErrorKind.TRANSIENT
        if end(row, to=Status.FAILED, actor=actor, result=result, message=f"Failed ({kind}): {outcome.message}",
                last_error=outcome.message, error_kind=kind):  # fmt: skip
            result.failed[error_signature(outcome.message)] += 1


def wait(row: Transfer, outcome: Outcome, *, actor: str, result: BatchResult) -> None:
    """The document waits for a rate limit's reset; the attempt that met
    the limit wrote nothing, so it does not count as one."""
    limited = outcome.waiting
    resumes_at = limited.resumes_at
    if end(row, to=Status.WAITING, actor=actor, result=result, message=f"Waiting: {outcome.message}",
            waiting_for=limited.limit_name[:120], not_before=resumes_at, last_error=outcome.message,
            error_kind=ErrorKind.RATE_LIMITED, attempts=F("attempts") - 1):  # fmt: skip
        result.waiting[limited.limit_name] += 1
        result.resume_at[limited.limit_name] = max(resumes_at.isoformat(), result.resume_at.get(limited.limit_name, ""))
        if limited.budget is not None:
            budget = limited.budget
            RateLimitWindow.objects.update_or_create(
                name=budget.name[:120],
                defaults={"scope": budget.scope, "limit": budget.limit, "window_seconds": budget.window, "reset_at": resumes_at},
            )


def end(row: Transfer, *, to: str, message: str, actor: str, result: BatchResult, **fields) -> bool:
    """End the document's attempt if this batch still holds it. When its
    claim ran out and another worker took it, leave it to that worker, say
    so, and count it lost."""
    holder = row.claimed_by
    fields.setdefault("claimed_by", "")
    if transfer_transition(row, to=to, actor=actor, message=message, holder=holder, **fields):
        return True
    result.lost += 1
    now_held_by = Transfer.objects.filter(pk=row.pk).values_list("claimed_by", flat=True).first() or "no one"
    log.warning("%s lost its claim on %s before finishing (now held by %s)", holder, row, now_held_by)
    transfer_note(row, actor=actor, message=f"{holder} lost its claim before finishing (its lease ran out); not changed. Outcome it reached: {message}")
    return False


def skip_removed(row: Transfer, reason: str, detail: str, *, actor: str, result: BatchResult) -> None:
    """Skip a document whose record was just removed, forgetting the record."""
    if end(row, to=Status.SKIPPED, message=detail, actor=actor, result=result, skip_reason=reason, skip_detail=detail,
            rkey="", record_uri="", record_cid="", record_fingerprint=""):  # fmt: skip
        result.skipped[reason] += 1


def migrated_fields(row, *, rkey, uri, cid, blob, kind: RecordKind, thumbnail=None) -> dict:
    """What a migrated row holds of the record just written (or adopted)."""
    fields = {
        "rkey": rkey, "record_uri": uri, "record_cid": cid,
        "last_error": "", "error_kind": "", "skip_reason": "", "skip_detail": "", "claimed_by": "",
        "blob_cid": blob_link(blob), "record_fingerprint": row.source_fingerprint, "migrated_at": timezone.now(),
        "written_by": written_for.get()[:150], "record_shape": kind.record_shape(),
    }  # fmt: skip
    if thumbnail is not None:
        fields.update(blob_size=thumbnail.size, blob_mime=thumbnail.mime_type, blob_fallback=thumbnail.fallback)
    else:  # adopted, or written keeping its blob: the blob's size and type as the record has them, else what the row knew
        # (the fallback that made it is known only to the attempt that made it); every change sets the same fields
        size, mime = (blob.get("size"), blob.get("mimeType")) if isinstance(blob, dict) and blob_link(blob) else (None, None)
        fields.update(
            blob_size=size if isinstance(size, int) and size >= 0 else row.blob_size,
            blob_mime=mime[:32] if isinstance(mime, str) else row.blob_mime,
            blob_fallback=row.blob_fallback,
        )
    return fields


def migrated(row, fields: dict, *, message, actor, result: BatchResult) -> bool:
    """Mark the document migrated with the record just written (or adopted),
    unless MongoDB changed its fields since the batch loaded it: then it goes
    back to pending, knowing its record, to be rewritten. Returns whether it
    is migrated. ``fields``: from ``migrated_fields``, with ``recording_learned``'s
    when the attempt looked for a recording."""
    fields = dict(fields)
    learned = {"content": fields.pop("content")} if "content" in fields else {}
    holder = row.claimed_by
    if transfer_transition(
        row, to=Status.MIGRATED, actor=actor, message=message, holder=holder,
        expect={name: getattr(row, name) for name in UNCHANGED_WHILE_RUNNING}, **fields, **learned,
    ):  # fmt: skip
        result.migrated += 1
        return True
    # The recording was looked for under the old fields: it is not learned.
    message += " MongoDB changed while it was being migrated, so the record will be rewritten from the new fields."
    fields.pop("migrated_at")
    if end(row, to=Status.PENDING, message=message, actor=actor, result=result, **fields):
        result.changed += 1
    return False


def recording_learned(row: Transfer, found: bool, *, kind: RecordKind) -> dict:
    """The row's fields that keep whether the attempt found the document's
    recording (a kind with recordings: its content, ``recording`` set or
    cleared); nothing for a kind without."""
    return {"content": row.content_with_recording(found)} if kind.recordings else {}


def blob_link(blob) -> str:
    if isinstance(blob, dict):
        return (blob.get("ref") or {}).get("$link", "")
    return getattr(getattr(blob, "ref", None), "link", "") or ""


def notes(works: list[Work], *, actor: str, message) -> None:
    events_add(((work.row.pk, work.row.status, work.row.status, message(work)) for work in works), actor=actor)


# What the PDS answers for an account that cannot be written to (deleted,
# deactivated, taken down): no retry helps until that changes.
ACCOUNT_ERRORS = frozenset({"AccountDeactivated", "AccountTakedown", "RepoDeactivated", "RepoTakendown", "RepoNotFound", "AccountNotFound"})


def pds_outcome(doing: str, error: pds.PdsError, *, removing: bool = False) -> Outcome:
    """How a failed PDS call ends a document's attempt: waiting when a rate
    limit is spent past the longest wait a worker is held; skipped, saying
    so, when the account cannot be written to (a removal stays failed, and
    is retried: the account may come back, and its record with it); else
    failed."""
    if isinstance(error, pds.RateLimited):
        message = f"{doing}: {error.limit_name} is spent until {error.resumes_at:%Y-%m-%d %H:%M:%S} UTC; it resumes by itself then."
        return Outcome(message, kind=ErrorKind.RATE_LIMITED, waiting=error)
    if error.error in ACCOUNT_ERRORS and not removing:
        message = f"{doing}: the PDS says the account cannot be written to ({error.error}). Re-check the skip when the account is active again."
        return Outcome(message, skip_reason=SkipReason.ACCOUNT_UNUSABLE)
    return Outcome(f"{doing}: {error}", kind=error.kind)
