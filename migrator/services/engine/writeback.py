"""After the write: the batch's records settled together, each kind's keys
back to MongoDB (``atproto``) in one bulk write, then its rows migrated in
one transition, rather than once per account: a batch of small accounts
asks MongoDB and the state table once, not once each. A document MongoDB
lost meanwhile has its new record removed; one MongoDB changed meanwhile
goes back to pending, to be rewritten from its new fields.

Until then a written record's row stays claimed: should the worker die
first, the next attempt finds the record and adopts it."""

from pymongo.errors import PyMongoError

from migrator import pds, source
from migrator.models import ErrorKind, SkipReason, Status
from migrator.services.lifecycle import UNKNOWN_RUN
from migrator.services.state import Change, transfers_transition_each

from .finish import UNCHANGED_WHILE_RUNNING, blob_link, finish, migrated, migrated_fields, pds_outcome, recording_learned, skip_removed
from .work import BatchResult, Outcome, Work, Written


def settle(written: list[Written], *, actor: str, result: BatchResult) -> None:
    """Settle the records a batch wrote, of any kinds and accounts: each
    kind's keys back to its own collection, then its rows migrated."""
    by_kind: dict[str, list[Written]] = {}
    for one in written:
        by_kind.setdefault(one.work.kind.name, []).append(one)
    for of_kind in by_kind.values():
        _settle_kind(of_kind, actor=actor, result=result)


def _settle_kind(written: list[Written], *, actor: str, result: BatchResult) -> None:
    kind = written[0].work.kind
    try:
        gone = source.rkeys_write_back(
            (source.WriteBack(ref=one.work.row.ref, rkey=one.work.rkey, uri=one.ref.uri, cid=one.ref.cid) for one in written), kind=kind
        )
    except PyMongoError as error:
        # The records exist; the next attempt finds and adopts them.
        for one in written:
            message = f"Record {one.ref.uri} written, but the MongoDB write-back failed ({type(error).__name__}); the next attempt adopts the record."
            finish(one.work.row, Outcome(message, kind=ErrorKind.TRANSIENT), actor=actor, result=result)
        return
    changes = []
    for one in written:
        work, ref = one.work, one.ref
        if work.row.ref not in gone:
            verb = "Updated" if work.action == "update" else "Wrote"
            if work.blob is not None and work.action == "create":
                message = f"Wrote record {ref.uri} with the {kind.blob_field} {blob_link(work.blob)} the PDS still held (nothing fetched or uploaded); MongoDB has {kind.migrated_field}."
            elif work.blob is not None:
                message = f"Updated record {ref.uri}, keeping its {kind.blob_field} {blob_link(work.blob)} (what it is made from is the same); MongoDB has {kind.migrated_field}."
            elif work.thumbnail is not None:
                message = f"{verb} record {ref.uri} with a {work.thumbnail.size:,}-byte {work.thumbnail.fallback} {kind.blob_field}; MongoDB has {kind.migrated_field}."
            else:
                message = f"{verb} record {ref.uri}; MongoDB has {kind.migrated_field}."
            blob = work.record.get(kind.blob_field) if kind.blob_field else None
            fields = migrated_fields(work.row, rkey=work.rkey, uri=ref.uri, cid=ref.cid, blob=blob, thumbnail=work.thumbnail, kind=kind)
            changes.append(Change(work.row, message, {**fields, **recording_learned(work.row, work.has_recording, kind=kind)}))
    # All at once when nothing moved under us (the usual case); any document
    # MongoDB changed meanwhile, or whose claim ran out, one by one.
    holder = written[0].work.row.claimed_by
    unmade = transfers_transition_each(changes, to=Status.MIGRATED, actor=actor, holder=holder, expect=UNCHANGED_WHILE_RUNNING)
    result.migrated += len(changes) - len(unmade)
    for change in unmade:
        migrated(change.transfer, change.fields, message=change.message, actor=actor, result=result)
    for one in written:
        if one.work.row.ref in gone:
            gone_meanwhile(one.repo, one.work, actor=actor, result=result)


def adopt(repo, work: Work, stored, *, actor: str, result: BatchResult) -> None:
    """Take over a record an earlier attempt wrote, and finish its document."""
    blob = (stored.value.get(work.kind.blob_field) if work.kind.blob_field else None) or {}
    try:
        gone = source.rkeys_write_back([source.WriteBack(ref=work.row.ref, rkey=work.rkey, uri=stored.uri, cid=stored.cid)], kind=work.kind)
    except PyMongoError as error:
        finish(work.row, Outcome(f"MongoDB write-back failed: {type(error).__name__}", kind=ErrorKind.TRANSIENT), actor=actor, result=result)
        return
    if gone:
        gone_meanwhile(repo, work, actor=actor, result=result)
        return
    # Its recordingUrl (if any) was found on storage under these very fields.
    fields = migrated_fields(work.row, rkey=work.rkey, uri=stored.uri, cid=stored.cid, blob=blob, kind=work.kind)
    if work.row.written_by.startswith(UNKNOWN_RUN):  # written before the state table knew of it: not by this run
        fields["written_by"] = work.row.written_by
    adopted = migrated(
        work.row, {**fields, **recording_learned(work.row, work.kind.recording_in(stored.value), kind=work.kind)},
        message=f"Found record {stored.uri} from an earlier attempt; adopted it without writing.", actor=actor, result=result,
    )  # fmt: skip
    result.adopted += adopted


def gone_meanwhile(repo, work: Work, *, actor: str, result: BatchResult) -> None:
    """MongoDB lost the document while its record was written: remove the
    record (no record without its document) and skip it."""
    try:
        repo.record_delete(collection=work.kind.nsid, rkey=work.rkey)
    except pds.PdsError as error:
        finish(work.row, pds_outcome(f"MongoDB no longer has the {work.kind.name}; removing record {work.rkey} failed", error, removing=True), actor=actor, result=result)
        return
    uri = f"at://{repo.did}/{work.kind.nsid}/{work.rkey}"
    skip_removed(work.row, SkipReason.GONE, f"MongoDB no longer has this {work.kind.name}; removed record {uri} written for it.", actor=actor, result=result)
