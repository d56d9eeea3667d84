"""``transfers_verify``: chosen state rows checked one record at a time (the
admin's "Verify against the PDS")."""

from dataclasses import dataclass, field

from django.db.models import QuerySet

from migrator import pds, source
from migrator.kinds import RecordKind, kind_for
from migrator.models import Account, Transfer, Status
from migrator.services.state import transfer_note

from .index import Scope
from .judge import Judge, expected_fields, field_differences
from .scan import is_object_id


@dataclass
class VerifyReport:
    checked: int = 0
    matching: int = 0
    differences: list[str] = field(default_factory=list)


def transfers_verify(transfers: QuerySet, *, actor: str, batch_size: int = 200) -> VerifyReport:
    """Check each row of ``transfers`` (of any kinds) against MongoDB and
    its record on the PDS (getRecord by rkey), and note the outcome as an
    event on each. A migrated document matches when its record exists with
    MongoDB's fields and rkey; any other when its key holds no record.

    Returns a VerifyReport; PDS failures are differences, not exceptions.
    """
    report = VerifyReport()
    anonymous_did = Account.objects.filter(is_anonymous=True).values_list("did", flat=True).first() or ""
    scope = Scope(filters={}, accounts={}, anonymous_did=anonymous_did, narrowed=True)
    batch: list[Transfer] = []
    for row in transfers.order_by("kind", "id").iterator(chunk_size=batch_size):
        if batch and (len(batch) >= batch_size or row.kind != batch[0].kind):
            _verify_batch(batch, scope=scope, actor=actor, report=report, kind=kind_for(batch[0].kind))
            batch = []
        batch.append(row)
    if batch:
        _verify_batch(batch, scope=scope, actor=actor, report=report, kind=kind_for(batch[0].kind))
    return report


def _verify_batch(rows: list[Transfer], *, scope: Scope, actor: str, report: VerifyReport, kind: RecordKind) -> None:
    documents = source.documents_stream(refs=[row.ref for row in rows if is_object_id(row.ref)], kind=kind)
    by_ref = {fields.ref: fields for fields in map(kind.read, documents)}
    handles = source.handles_for(fields.owner for fields in by_ref.values() if fields.owner)
    for row in rows:
        fields = by_ref.get(row.ref)
        try:
            problems, outcome = _verify_one(row, fields, handles.get(fields.owner, "") if fields else "", scope, kind=kind)
        except pds.PdsError as error:
            problems, outcome = [f"the PDS could not be read: {error}"], ""
        report.checked += 1
        if problems:
            report.differences.extend(f"{row}: {problem}" for problem in problems)
            transfer_note(row, actor=actor, message="Verified against the PDS: differs: " + "; ".join(problems))
        else:
            report.matching += 1
            transfer_note(row, actor=actor, message=f"Verified against the PDS: {outcome}")


def _verify_one(row: Transfer, fields, handle: str, scope: Scope, *, kind: RecordKind) -> tuple[list[str], str]:
    """(problems, what matched) for one state row."""
    if fields is None:
        return [f"MongoDB has no such {kind.name}"], ""
    should_have = row.status == Status.MIGRATED or bool(fields.rkey)
    did = row.account_did or ("" if fields.owner else scope.anonymous_did)
    if not did:
        return (["no ATProto account to hold its record"], "") if should_have else ([], f"no account, as expected for a {row.status} {kind.name}.")
    scope.accounts.setdefault(did, fields.owner)
    judge = Judge(fields, row, [], handle, scope, actor="", kind=kind)
    rkey = row.rkey or fields.rkey or judge.expected_rkey
    if not rkey:
        return (["no rkey to look the record up by"], "") if should_have else ([], f"no record key, as expected for a {row.status} {kind.name}.")
    stored = scope.repo(did).record_get(collection=kind.nsid, rkey=rkey)
    if stored is None:
        if should_have:
            return [f"no record at {did}/{rkey}"], ""
        return [], f"no record, as expected for a {row.status} {kind.name}."
    if not should_have:
        if stored.value.get("ref") == fields.ref:
            return [f"the state says {row.status} but the PDS has {stored.uri}"], ""
        return [], f"no record, as expected for a {row.status} {kind.name}."
    expected, complete = expected_fields(fields, handle, has_recording=row.has_recording, kind=kind)
    problems = field_differences(stored.value, expected, complete=complete, kind=kind)
    if fields.rkey != stored.rkey:
        problems.append(f"MongoDB's {kind.migrated_field} is {fields.rkey or 'unset'}, the record's {stored.rkey}")
    if row.rkey and row.rkey != stored.rkey:
        problems.append(f"the state's rkey is {row.rkey}, the record's {stored.rkey}")
    return problems, f"the record {stored.uri} matches."
