"""Documents that must have no record: deleted from MongoDB (looked up once
more: one that came back is migrated as usual), taken down by staff, or of a
kind that keeps no record of a deleted document. Their records are removed
and the rows skipped, saying why."""

from pymongo.errors import PyMongoError

from migrator import pds, source
from migrator.kinds import RecordKind
from migrator.models import ErrorKind, Transfer, SkipReason
from migrator.services.state import transfer_note

from .accounts import repo_for
from .finish import finish, pds_outcome, skip_removed
from .prepare import tried_before
from .work import BatchResult, Outcome


def gone_settle(owner: str, rows: list[Transfer], *, credentials, actor: str, result: BatchResult, kind: RecordKind) -> list[Transfer]:
    """Remove the records of the documents MongoDB no longer has (looked up
    once more: one that came back is migrated as usual). An account the PDS
    reports deleted, deactivated or taken down is not logged in to: its
    documents end skipped, saying so. Returns the rows left to migrate."""
    gone = [row for row in rows if row.gone_since is not None]
    if not gone:
        return rows
    rows = [row for row in rows if row.gone_since is None]
    try:
        present = source.refs_present((row.ref for row in gone), kind=kind)
    except PyMongoError as error:
        for row in gone:
            finish(row, Outcome(f"Could not check MongoDB for the {kind.name}: {type(error).__name__}", kind=ErrorKind.TRANSIENT), actor=actor, result=result)
        return rows
    back = [row for row in gone if row.ref in present]
    if back:
        Transfer.objects.filter(pk__in=[row.pk for row in back]).update(gone_since=None)
        for row in back:
            row.gone_since = None
            transfer_note(row, actor=actor, message=f"MongoDB has this {kind.name} again; it is migrated as usual.")
    missing = [row for row in gone if row.ref not in present]
    why = f"MongoDB no longer has this {kind.name}"
    for row in [row for row in missing if not tried_before(row)]:
        finish(row, Outcome(f"{why}; it had no record.", skip_reason=SkipReason.GONE), actor=actor, result=result)
    missing = [row for row in missing if tried_before(row)]
    if missing:
        gone_remove(owner, missing, credentials=credentials, why=why, actor=actor, result=result, kind=kind)
    return rows + back


def gone_remove(owner: str, rows: list[Transfer], *, credentials, why: str, actor: str, result: BatchResult, kind: RecordKind) -> None:
    did = next((row.account_did for row in rows if row.account_did), "")
    try:
        status = pds.account_status(did) if did else "deleted"
    except pds.PdsError as error:
        for row in rows:
            finish(row, pds_outcome(f"Could not ask the PDS about the account {did}", error, removing=True), actor=actor, result=result)
        return
    if status == "deleted":  # erased: the account's records went with it
        for row in rows:
            skip_removed(row, SkipReason.GONE, f"{why}, and its account {did or '(unknown)'} is deleted on the PDS: its records went with it.", actor=actor, result=result)
        return
    if status != "active":
        # Its records are not served while it is, but would be again if it
        # came back: the removal waits for that, retried with backoff.
        message = f"{why}; its account {did} is {status} on the PDS, so its record cannot be removed yet. Retried until it can."
        for row in rows:
            finish(row, Outcome(message, kind=ErrorKind.TRANSIENT), actor=actor, result=result)
        return
    try:
        if not owner or (credentials is not None and credentials.usable):
            repo = repo_for(owner, rows, credentials=credentials)
        else:  # the user's MongoDB documents went too: the stored session is all there is
            repo = pds.repo_for(did=did)
    except Outcome as outcome:
        for row in rows:
            finish(row, Outcome(f"{why}; removing its record: {outcome.message}", kind=outcome.kind or ErrorKind.TRANSIENT), actor=actor, result=result)
        return
    except pds.PdsError as error:
        for row in rows:
            finish(row, pds_outcome(f"{why}; opening the account {did} to remove its record failed", error, removing=True), actor=actor, result=result)
        return
    for row in rows:
        record_remove(repo, row, reason=SkipReason.GONE, why=why, actor=actor, result=result, kind=kind, clear_source=False)


def record_remove(
    repo, row: Transfer, *, reason: str, why: str, actor: str, result: BatchResult, kind: RecordKind, clear_source: bool = True
) -> None:
    """A document that must have no record (``why``: nuked under
    NUKED_PAINTINGS=skip, taken down, deleted from MongoDB) and that was
    migrated, or tried by an attempt that stopped midway and may have
    written its record: delete the record and (``clear_source``) MongoDB's
    ``atproto`` reference to it, then skip it for ``reason``."""
    rkey = row.rkey
    try:
        if not rkey:
            rkey = _record_left_behind(repo, row, kind=kind)
            if not rkey:
                finish(row, Outcome(f"{why}; no record was written for it.", skip_reason=reason), actor=actor, result=result)
                return
        repo.record_delete(collection=kind.nsid, rkey=rkey)
        if clear_source:
            source.rkeys_clear([row.ref], kind=kind)
    except pds.PdsError as error:
        finish(row, pds_outcome(f"Removing record {rkey or 'left by an earlier attempt'} failed ({why[0].lower()}{why[1:]})", error, removing=True), actor=actor, result=result)
        return
    except PyMongoError as error:
        finish(row, Outcome(f"Record {rkey} removed; clearing MongoDB failed: {type(error).__name__}", kind=ErrorKind.TRANSIENT), actor=actor, result=result)
        return
    uri = f"at://{repo.did}/{kind.nsid}/{rkey}"
    skip_removed(row, reason, f"Removed record {uri}: {why[0].lower()}{why[1:]}.", actor=actor, result=result)


def _record_left_behind(repo, row: Transfer, *, kind: RecordKind) -> str:
    """The key of the record an earlier attempt wrote for ``row`` before
    it stopped, or "" when there is none. Raises PdsError."""
    try:
        rkey = kind.record_key(when=row.when, ref=row.ref)
    except (ValueError, TypeError):
        return ""
    stored = repo.record_get(collection=kind.nsid, rkey=rkey)
    return rkey if stored is not None and stored.value.get("ref") == row.ref else ""
