"""Writing one account's chunk of records: one ``applyWrites`` within the
account's write budget, and one record at a time when a write in it
conflicts or is refused, so only the document at fault fails."""

from migrator import pds
from migrator.models import ErrorKind

from .blobs import blobs_upload
from .finish import finish, notes, pds_outcome
from .work import BatchResult, Outcome, Work
from .writeback import written


def chunk_write(repo, works: list[Work], *, actor: str, result: BatchResult) -> None:
    """Upload the chunk's blobs, then write its records in one applyWrites,
    then write the keys back to MongoDB, then mark the documents migrated.
    No more than the account's write budget takes now is uploaded: the rest
    waits for its reset rather than spend uploads on records it cannot write."""
    works = within_write_budget(repo, works, actor=actor, result=result)
    works = blobs_upload(repo, works, actor=actor, result=result)
    if not works:
        return
    notes(works, actor=actor, message=lambda work: f"Writing record {work.rkey} ({work.action}).")
    try:
        refs = repo.apply_writes([pds.Write(work.action, work.kind.nsid, work.rkey, work.record) for work in works])
    except pds.RecordConflict:
        # Someone wrote some of these since we looked: reconcile each one alone.
        for work in works:
            single_write(repo, work, actor=actor, result=result)
        return
    except pds.PdsError as error:
        if error.permanent and len(works) > 1:  # find the one document at fault
            for work in works:
                single_write(repo, work, actor=actor, result=result)
            return
        for work in works:
            finish(work.row, pds_outcome("Writing the record failed", error), actor=actor, result=result)
        return
    written(repo, works, refs, actor=actor, result=result)


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


def single_write(repo, work: Work, *, actor: str, result: BatchResult) -> None:
    try:
        stored = repo.record_get(collection=work.kind.nsid, rkey=work.rkey)
        if stored is not None and stored.value.get("ref") != work.row.ref:
            raise Outcome(f"Record key {work.rkey} holds another {work.kind.name} ({stored.value.get('ref')}).", kind=ErrorKind.PERMANENT)
        ref = repo.record_put(collection=work.kind.nsid, rkey=work.rkey, record=work.record)
    except pds.PdsError as error:
        finish(work.row, pds_outcome("Writing the record failed", error), actor=actor, result=result)
        return
    except Outcome as outcome:
        finish(work.row, outcome, actor=actor, result=result)
        return
    written(repo, [work], [ref], actor=actor, result=result)
