"""Writing one account's chunk of records: one ``applyWrites`` within the
account's write budget, and one record at a time when a write in it
conflicts or is refused, so only the document at fault fails. What is
written is returned, to be settled with the rest of the batch
(engine.writeback)."""

from migrator import pds
from migrator.models import ErrorKind

from .blobs import blobs_upload
from .finish import finish, notes, pds_outcome
from .work import BatchResult, Outcome, Work, Written


def chunk_write(repo, works: list[Work], *, actor: str, result: BatchResult) -> list[Written]:
    """Upload the chunk's blobs, then write its records in one applyWrites.
    Returns the records written; every other document of the chunk is
    finished here (failed, skipped or waiting). No more than the account's
    write budget takes now is uploaded: the rest waits for its reset rather
    than spend uploads on records it cannot write."""
    works = within_write_budget(repo, works, actor=actor, result=result)
    works = blobs_upload(repo, works, actor=actor, result=result)
    if not works:
        return []
    notes(works, actor=actor, message=lambda work: f"Writing record {work.rkey} ({work.action}).")
    try:
        refs = repo.apply_writes([pds.Write(work.action, work.kind.nsid, work.rkey, work.record) for work in works])
    except pds.RecordConflict:
        # Someone wrote some of these since we looked: reconcile each one alone.
        return _one_at_a_time(repo, works, actor=actor, result=result)
    except pds.PdsError as error:
        if error.permanent and len(works) > 1:  # find the one document at fault
            return _one_at_a_time(repo, works, actor=actor, result=result)
        for work in works:
            finish(work.row, pds_outcome("Writing the record failed", error), actor=actor, result=result)
        return []
    return [Written(repo, work, ref) for work, ref in zip(works, refs, strict=True)]


def within_write_budget(repo, works: list[Work], *, actor: str, result: BatchResult) -> list[Work]:
    capacity = repo.write_capacity()
    if capacity is None or capacity >= len(works):
        return works
    blocked = repo.writes_blocked(len(works))
    if blocked is None:
        return works
    for work in works[capacity:]:
        finish(work.row, pds_outcome("Writing the record", blocked), actor=actor, result=result)
    return works[:capacity]


def _one_at_a_time(repo, works: list[Work], *, actor: str, result: BatchResult) -> list[Written]:
    return [written for work in works if (written := single_write(repo, work, actor=actor, result=result)) is not None]


def single_write(repo, work: Work, *, actor: str, result: BatchResult) -> Written | None:
    """One record alone, reconciled with what its key holds. Returns it
    written, or None when its document is finished here."""
    try:
        stored = repo.record_get(collection=work.kind.nsid, rkey=work.rkey)
        if stored is not None and stored.value.get("ref") != work.row.ref:
            raise Outcome(f"Record key {work.rkey} holds another {work.kind.name} ({stored.value.get('ref')}).", kind=ErrorKind.PERMANENT)
        ref = repo.record_put(collection=work.kind.nsid, rkey=work.rkey, record=work.record)
    except pds.PdsError as error:
        finish(work.row, pds_outcome("Writing the record failed", error), actor=actor, result=result)
        return None
    except Outcome as outcome:
        finish(work.row, outcome, actor=actor, result=result)
        return None
    return Written(repo, work, ref)
