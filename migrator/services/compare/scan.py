"""``documents_compare``: every document of a kind in scope against the state
table and the listed records, then the records and state rows no document claimed."""

from collections.abc import Iterator

from pymongo.errors import PyMongoError

from migrator import pds, source
from migrator.kinds import RecordKind
from migrator.lexicon import InvalidRecord
from migrator.models import Transfer, Status

from migrator.services.lifecycle import mongodb_verify

from .index import RecordIndex, Scope, compare_scope
from .judge import Judge
from .report import ACTOR, CompareReport, Difference, DifferenceKind, RepairSkipped


def documents_compare(
    *,
    handle: str | None = None,
    anonymous: bool = False,
    repair: bool = False,
    dry_run: bool = False,
    actor: str = ACTOR,
    examples: int | None = 10,
    batch_size: int = 500,
    kind: RecordKind,
) -> CompareReport:
    """Compare MongoDB, the state table and the PDS, for one user (``handle``),
    the guests (``anonymous``) or everyone. With ``repair`` (and not
    ``dry_run``) fix what can be fixed, as each difference is found.

    Returns a CompareReport. Raises CompareError for a scope that cannot be
    compared, source.WrongDatabase for a MONGODB_DB that is not the
    migration's, pymongo errors when MongoDB cannot be read; an account whose
    records cannot be listed is a difference, not an exception. ``kind``:
    which documents and records.
    """
    mongodb_verify(kind=kind)
    scope = compare_scope(handle=handle, anonymous=anonymous, kind=kind)
    report = CompareReport(examples_per_kind=examples, repair=repair, dry_run=dry_run)
    act = repair and not dry_run
    index = RecordIndex()
    try:
        _list_accounts(scope, index, report, kind=kind)
        for documents in source.documents_batches(batch_size=batch_size, kind=kind, **scope.filters):
            report.documents += len(documents)
            for difference in _compare_batch(documents, scope=scope, index=index, actor=actor, kind=kind):
                _settle(difference, report, act=act)
        for difference in _unseen_records(scope, index, batch_size, kind=kind):
            _settle(difference, report, act=act)
        if not scope.narrowed:
            for difference in _state_without_documents(index, batch_size, kind=kind):
                _settle(difference, report, act=act)
    finally:
        index.close()
    return report


def _settle(difference: Difference, report: CompareReport, *, act: bool) -> None:
    if difference.fix is not None:
        report.repairable[difference.kind] += 1
    if act and difference.fix is not None:
        try:
            difference.fix()
        except RepairSkipped as skipped:
            difference.repair_error = str(skipped)
            report.repair_failures[difference.kind] += 1
        except (pds.PdsError, InvalidRecord, source.SourceError, PyMongoError) as error:
            difference.repair_error = str(error) if not isinstance(error, PyMongoError) else f"MongoDB: {type(error).__name__}"
            report.repair_failures[difference.kind] += 1
        else:
            difference.repaired = True
            report.repaired[difference.kind] += 1
    report.add(difference)


def _list_accounts(scope: Scope, index: RecordIndex, report: CompareReport, *, kind: RecordKind) -> None:
    for did in sorted(scope.accounts):
        try:
            repo = scope.repo(did)
            cursor = None
            while True:
                records, cursor = repo.records_list(collection=kind.nsid, limit=100, cursor=cursor)
                index.add(did, records)
                report.records += len(records)
                if not cursor:
                    break
        except pds.PdsError as error:
            report.add(Difference(DifferenceKind.ACCOUNT_UNREADABLE, ref="", did=did, detail=str(error)))
            continue
        scope.listed.add(did)
        report.accounts.append(did)
    index.db.commit()


def _compare_batch(documents: list[dict], *, scope: Scope, index: RecordIndex, actor: str, kind: RecordKind) -> Iterator[Difference]:
    documents_read = [kind.read(document) for document in documents]
    refs = [fields.ref for fields in documents_read]
    rows = {row.ref: row for row in Transfer.objects.filter(kind=kind.name, ref__in=refs)}
    handles = source.handles_for(fields.owner for fields in documents_read if fields.owner)
    records = index.records_for(refs)
    for fields in documents_read:
        row = rows.get(fields.ref)
        judge = Judge(fields, row, records.get(fields.ref, []), handles.get(fields.owner, ""), scope, actor, kind=kind)
        # Judge everything before any fix runs, so a repair finds what a
        # dry run shows and one fix never makes the next check see a change.
        yield from list(judge.differences())


def _unseen_records(scope: Scope, index: RecordIndex, batch_size: int, *, kind: RecordKind) -> Iterator[Difference]:
    for batch in index.unseen_records(batch_size):
        refs = [ref for ref, _, _ in batch if is_object_id(ref)]
        elsewhere = {str(document["_id"]) for document in source.documents_stream(refs=refs, kind=kind)} if refs else set()
        for ref, did, rkey in batch:
            if ref in elsewhere:
                detail = f"The record's {kind.name} is outside this comparison (another owner)."
                yield Difference(DifferenceKind.WRONG_ACCOUNT, ref=ref, did=did, rkey=rkey, detail=detail)
            else:
                detail = f"No MongoDB {kind.name} has this ref." if ref else "The record has no ref."
                yield Difference(DifferenceKind.ORPHAN_RECORD, ref=ref, did=did, rkey=rkey, detail=detail)


def _state_without_documents(index: RecordIndex, batch_size: int, *, kind: RecordKind) -> Iterator[Difference]:
    rows = Transfer.objects.filter(kind=kind.name, status=Status.MIGRATED).values_list("ref", "account_did", "rkey")
    batch = []
    for row in rows.iterator(chunk_size=batch_size):
        batch.append(row)
        if len(batch) >= batch_size:
            yield from _gone(batch, index, kind=kind)
            batch = []
    yield from _gone(batch, index, kind=kind)


def _gone(batch: list[tuple[str, str, str]], index: RecordIndex, *, kind: RecordKind) -> Iterator[Difference]:
    if not batch:
        return
    seen = index.seen_among([ref for ref, _, _ in batch])
    for ref, did, rkey in batch:
        if ref not in seen:
            detail = (
                f"The state says migrated, but MongoDB has no such {kind.name}. The next full seed (manage.py seed {kind.plural}, "
                "or live sync's hourly re-read) removes its record, within the tripwire."
            )
            yield Difference(DifferenceKind.STATE_MISMATCH, ref=ref, did=did, rkey=rkey, detail=detail)


is_object_id = source.is_object_id
