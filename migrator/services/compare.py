"""MongoDB, the state table and the PDS side by side (the plan's comparison tool).

``paintings_compare`` lists every record of the accounts concerned (page by
page) into a temporary SQLite index on disk, then streams MongoDB's paintings
in batches and judges each against its state row and its records. Memory
stays flat whatever the corpus size: only one page or one batch is held at a
time, plus the first few examples of each kind of difference.

With ``repair`` it fixes what it can as it goes, each fix with an audit event
on the painting; ``dry_run`` says what it would do and does nothing.
``paintings_verify`` checks chosen state rows one record at a time (the
admin's "Verify against the PDS").
"""

import json
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from migrator import pds, source
from migrator.images import ImageError
from migrator.lexicon import InvalidRecord, record_validate
from migrator.models import Account, PaintingMigration, Status
from migrator.records import SourceFields, painting_record, source_fields
from migrator.services.state import painting_note, painting_transition
from migrator.tid import tid_for_painting

ACTOR = "command:compare_paintings"
COMPARED_FIELDS = ("ref", "slug", "code", "when", "imageUrl", "recordingUrl", "nuked")
IN_FLIGHT = (Status.QUEUED, Status.RUNNING)  # the engine owns these rows right now


class Kind(StrEnum):
    MISSING_RECORD = "missing_record"
    ORPHAN_RECORD = "orphan_record"
    DUPLICATE_RECORD = "duplicate_record"
    FIELD_MISMATCH = "field_mismatch"
    RKEY_MISMATCH = "rkey_mismatch"
    STATE_MISMATCH = "state_mismatch"
    WRONG_ACCOUNT = "wrong_account"
    ACCOUNT_UNREADABLE = "account_unreadable"

    @property
    def label(self) -> str:
        return KIND_LABELS[self]


KIND_LABELS = {
    Kind.MISSING_RECORD: "Paintings without a record",
    Kind.ORPHAN_RECORD: "Records without a painting",
    Kind.DUPLICATE_RECORD: "Duplicate records for one ref",
    Kind.FIELD_MISMATCH: "Record fields differ from MongoDB",
    Kind.RKEY_MISMATCH: "MongoDB atproto.rkey/uri differs from the record",
    Kind.STATE_MISMATCH: "State table inconsistent with MongoDB/PDS",
    Kind.WRONG_ACCOUNT: "Records in another account's repo",
    Kind.ACCOUNT_UNREADABLE: "Accounts whose records could not be listed",
}


class CompareError(Exception):
    """The comparison cannot start (an unknown handle, no anonymous account)."""


@dataclass
class Difference:
    """One thing that differs. ``repair`` says what --repair does (or did)
    about it, "" when it is only reported; ``repair_error`` is set when the
    fix was tried and failed."""

    kind: Kind
    ref: str
    detail: str
    did: str = ""
    rkey: str = ""
    repair: str = ""
    repaired: bool = False
    repair_error: str = ""
    fix: Callable[[], None] | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict:
        return {
            "kind": str(self.kind),
            "ref": self.ref,
            "did": self.did,
            "rkey": self.rkey,
            "detail": self.detail,
            "repair": self.repair,
            "repaired": self.repaired,
            "repair_error": self.repair_error,
        }


@dataclass
class CompareReport:
    """Counts of each kind of difference and the first ``examples`` of each."""

    examples_per_kind: int = 10
    repair: bool = False
    dry_run: bool = False
    paintings: int = 0
    records: int = 0
    accounts: list[str] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[Difference]] = field(default_factory=dict)
    repairable: Counter = field(default_factory=Counter)
    repaired: Counter = field(default_factory=Counter)
    repair_failures: Counter = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def clean(self) -> bool:
        return not self.total

    @property
    def unrepaired(self) -> int:
        return self.total - sum(self.repaired.values())

    def add(self, difference: Difference) -> None:
        self.counts[difference.kind] += 1
        kept = self.examples.setdefault(difference.kind, [])
        if self.examples_per_kind is None or len(kept) < self.examples_per_kind:
            kept.append(difference)

    def as_dict(self) -> dict:
        return {
            "paintings": self.paintings,
            "records": self.records,
            "accounts": self.accounts,
            "differences": self.total,
            "repair": self.repair,
            "dry_run": self.dry_run,
            "counts": {str(kind): self.counts[kind] for kind in Kind if self.counts[kind]},
            "repairable": {str(kind): count for kind, count in self.repairable.items()},
            "repaired": {str(kind): count for kind, count in self.repaired.items()},
            "examples": {str(kind): [d.as_dict() for d in kept] for kind, kept in self.examples.items()},
        }


@dataclass(frozen=True)
class IndexedRecord:
    did: str
    rkey: str
    uri: str
    cid: str
    value: dict


class RecordIndex:
    """The listed records, on disk: by ref, and which refs MongoDB has."""

    def __init__(self):
        self._file = tempfile.NamedTemporaryFile(prefix="compare-", suffix=".sqlite3")
        self.db = sqlite3.connect(self._file.name)
        self.db.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
            "CREATE TABLE records (ref TEXT, did TEXT, rkey TEXT, uri TEXT, cid TEXT, value TEXT);"
            "CREATE INDEX records_ref ON records (ref);"
            "CREATE TABLE seen (ref TEXT PRIMARY KEY);"
        )

    def close(self) -> None:
        self.db.close()
        self._file.close()

    def add(self, did: str, records: Iterable[pds.StoredRecord]) -> None:
        rows = [(_record_ref(r.value), did, r.rkey, r.uri, r.cid, json.dumps(r.value)) for r in records]
        self.db.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?)", rows)

    def records_for(self, refs: list[str]) -> dict[str, list[IndexedRecord]]:
        self.db.executemany("INSERT OR IGNORE INTO seen VALUES (?)", [(ref,) for ref in refs])
        found: dict[str, list[IndexedRecord]] = {}
        marks = ",".join("?" * len(refs))
        query = f"SELECT ref, did, rkey, uri, cid, value FROM records WHERE ref IN ({marks}) ORDER BY rkey"
        for ref, did, rkey, uri, cid, value in self.db.execute(query, refs):
            found.setdefault(ref, []).append(IndexedRecord(did, rkey, uri, cid, json.loads(value)))
        return found

    def unseen_records(self, batch_size: int) -> Iterator[list[tuple[str, str, str]]]:
        """(ref, did, rkey) of records whose ref no compared painting has, in batches."""
        cursor = self.db.execute("SELECT ref, did, rkey FROM records WHERE ref NOT IN (SELECT ref FROM seen) ORDER BY ref")
        while batch := cursor.fetchmany(batch_size):
            yield batch

    def seen_among(self, refs: list[str]) -> set[str]:
        marks = ",".join("?" * len(refs))
        return {row[0] for row in self.db.execute(f"SELECT ref FROM seen WHERE ref IN ({marks})", refs)}


def _record_ref(value: dict) -> str:
    ref = value.get("ref")
    return ref if isinstance(ref, str) else ""


@dataclass
class Scope:
    """What one comparison covers: MongoDB's filter and the accounts to list
    (DID -> auth0 sub of the owner, "" for the anonymous account)."""

    filters: dict
    accounts: dict[str, str]
    anonymous_did: str
    narrowed: bool
    listed: set[str] = field(default_factory=set)
    _repos: dict = field(default_factory=dict)

    def repo(self, did: str) -> pds.Repo:
        """The account's repo, logging in only through repo_for (sessions reused)."""
        if did not in self._repos:
            owner = self.accounts.get(did, "")
            password = ""
            if owner:
                credentials = source.credentials_for([owner]).get(owner)
                password = credentials.password if credentials else ""
            self._repos[did] = pds.repo_for(did=did, password=password)
        return self._repos[did]


def compare_scope(*, handle: str | None = None, anonymous: bool = False) -> Scope:
    """The accounts and paintings a comparison covers. Raises CompareError."""
    anonymous_did = Account.objects.filter(is_anonymous=True).values_list("did", flat=True).first() or ""
    if handle:
        owner = source.owner_for_handle(handle)
        if owner is None:
            raise CompareError(f"No aesthetic.computer user has the handle {handle}.")
        credentials = source.credentials_for([owner]).get(owner)
        did = (credentials.did if credentials else "") or (
            PaintingMigration.objects.filter(owner=owner).exclude(account_did="").values_list("account_did", flat=True).first()
        )
        if not did:
            raise CompareError(f"{handle} has no ATProto account.")
        return Scope(filters={"owner": owner}, accounts={did: owner}, anonymous_did=anonymous_did, narrowed=True)
    if anonymous:
        if not anonymous_did:
            raise CompareError("There is no anonymous account yet (python manage.py create_anon_account).")
        return Scope(filters={"anonymous": True}, accounts={anonymous_did: ""}, anonymous_did=anonymous_did, narrowed=True)
    # Every account that should hold records: rows migrated or with a known rkey.
    rows = (
        PaintingMigration.objects.filter(Q(status=Status.MIGRATED) | ~Q(rkey=""))
        .exclude(account_did="")
        .values_list("account_did", "owner")
        .order_by()  # Meta.ordering would defeat DISTINCT
        .distinct()
    )
    accounts = {did: owner for did, owner in rows}
    if anonymous_did:
        accounts[anonymous_did] = ""
    return Scope(filters={}, accounts=accounts, anonymous_did=anonymous_did, narrowed=False)


def paintings_compare(
    *,
    handle: str | None = None,
    anonymous: bool = False,
    repair: bool = False,
    dry_run: bool = False,
    actor: str = ACTOR,
    examples: int | None = 10,
    batch_size: int = 500,
) -> CompareReport:
    """Compare MongoDB, the state table and the PDS, for one user (``handle``),
    the guests (``anonymous``) or everyone. With ``repair`` (and not
    ``dry_run``) fix what can be fixed, as each difference is found.

    Returns a CompareReport. Raises CompareError for a scope that cannot be
    compared, pymongo errors when MongoDB cannot be read; an account whose
    records cannot be listed is a difference, not an exception.
    """
    scope = compare_scope(handle=handle, anonymous=anonymous)
    report = CompareReport(examples_per_kind=examples, repair=repair, dry_run=dry_run)
    act = repair and not dry_run
    index = RecordIndex()
    try:
        _list_accounts(scope, index, report)
        for documents in source.paintings_batches(batch_size=batch_size, **scope.filters):
            report.paintings += len(documents)
            for difference in _compare_batch(documents, scope=scope, index=index, actor=actor):
                _settle(difference, report, act=act)
        for difference in _unseen_records(scope, index, batch_size):
            _settle(difference, report, act=act)
        if not scope.narrowed:
            for difference in _state_without_paintings(index, batch_size):
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
        except (pds.PdsError, InvalidRecord, source.SourceError) as error:
            difference.repair_error = str(error)
            report.repair_failures[difference.kind] += 1
        else:
            difference.repaired = True
            report.repaired[difference.kind] += 1
    report.add(difference)


def _list_accounts(scope: Scope, index: RecordIndex, report: CompareReport) -> None:
    for did in sorted(scope.accounts):
        try:
            repo = scope.repo(did)
            cursor = None
            while True:
                records, cursor = repo.records_list(collection=settings.PAINTING_COLLECTION, limit=100, cursor=cursor)
                index.add(did, records)
                report.records += len(records)
                if not cursor:
                    break
        except pds.PdsError as error:
            report.add(Difference(Kind.ACCOUNT_UNREADABLE, ref="", did=did, detail=str(error)))
            continue
        scope.listed.add(did)
        report.accounts.append(did)
    index.db.commit()


def _compare_batch(documents: list[dict], *, scope: Scope, index: RecordIndex, actor: str) -> Iterator[Difference]:
    paintings = [source_fields(document) for document in documents]
    refs = [painting.ref for painting in paintings]
    rows = PaintingMigration.objects.in_bulk(refs, field_name="ref")
    handles = source.handles_for(painting.owner for painting in paintings if painting.owner)
    records = index.records_for(refs)
    for painting in paintings:
        row = rows.get(painting.ref)
        judge = PaintingJudge(painting, row, records.get(painting.ref, []), handles.get(painting.owner, ""), scope, actor)
        # Judge everything before any fix runs, so a repair finds what a
        # dry run shows and one fix never makes the next check see a change.
        yield from list(judge.differences())


@dataclass
class PaintingJudge:
    """Everything compare says about one painting, with the fix for each."""

    painting: SourceFields
    row: PaintingMigration | None
    records: list[IndexedRecord]
    handle: str
    scope: Scope
    actor: str
    rewritten_cid: str = ""  # set when --repair rewrote the record

    @property
    def expected_did(self) -> str:
        if self.row is not None and self.row.account_did:
            return self.row.account_did
        return "" if self.painting.owner else self.scope.anonymous_did

    @property
    def expected_rkey(self) -> str:
        try:
            return tid_for_painting(when=self.painting.when, ref=self.painting.ref) if self.painting.when else ""
        except ValueError:
            return ""

    def differences(self) -> Iterator[Difference]:
        row, painting = self.row, self.painting
        if row is not None and row.status in IN_FLIGHT:
            return
        did = self.expected_did
        if row is None:
            if painting.rkey or self.records:
                yield self._diff(Kind.STATE_MISMATCH, "Not in the state table though it has a record or an rkey; run seed_paintings.")
            return
        if not self.records:
            if (row.status == Status.MIGRATED or painting.rkey) and did in self.scope.listed and not self._written_since_listing(did):
                yield self._missing_record()
            return
        keeper, extras = self._keeper()
        for extra in extras:
            yield self._duplicate(extra, keeper)
        if did and keeper.did != did:
            yield self._diff(Kind.WRONG_ACCOUNT, f"The only kept record is in {keeper.did}, not in the painting's account {did}.", keeper)
            return
        yield from self._field_mismatch(keeper)
        if (painting.rkey, painting.uri) != (keeper.rkey, keeper.uri):
            yield self._rkey_mismatch(keeper)
        yield from self._state_mismatch(keeper)

    def _written_since_listing(self, did: str) -> bool:
        """Whether a running engine wrote the record after its account was
        listed: looked up by key before calling a record missing."""
        rkeys = {self.row.rkey, self.painting.rkey, self.expected_rkey} - {""}
        try:
            stored = [self.scope.repo(did).record_get(collection=settings.PAINTING_COLLECTION, rkey=rkey) for rkey in rkeys]
        except pds.PdsError:
            return False
        return any(record and record.value.get("ref") == self.painting.ref for record in stored)

    def _diff(self, kind: Kind, detail: str, record: IndexedRecord | None = None, repair: str = "", fix=None) -> Difference:
        did = record.did if record else self.expected_did
        rkey = record.rkey if record else (self.row.rkey if self.row else "") or self.painting.rkey
        return Difference(kind, ref=self.painting.ref, did=did, rkey=rkey, detail=detail, repair=repair, fix=fix)

    def _keeper(self) -> tuple[IndexedRecord, list[IndexedRecord]]:
        """The record to keep (the one at the painting's own TID, else in the
        right account, else the oldest) and the others."""
        ordered = sorted(self.records, key=lambda r: (r.rkey != self.expected_rkey, r.did != self.expected_did, r.rkey))
        return ordered[0], ordered[1:]

    def _missing_record(self) -> Difference:
        row, painting = self.row, self.painting
        detail = f"The state says {row.status} and MongoDB's atproto.rkey is {painting.rkey or 'unset'}, but the PDS has no record."

        def fix():
            if painting.rkey:
                source.rkeys_clear([painting.ref])
            message = "compare_paintings: the PDS has no record; back to pending so the engine migrates it again."
            cleared = {"rkey": "", "record_uri": "", "record_cid": "", "migrated_at": None}
            if row.status == Status.MIGRATED:
                painting_transition(row, to=Status.PENDING, actor=self.actor, message=message, **cleared)
            else:
                PaintingMigration.objects.filter(pk=row.pk).update(**cleared, updated_at=timezone.now())
                painting_note(row, actor=self.actor, message="compare_paintings: the PDS has no record; MongoDB's atproto.rkey cleared.")

        repair = "clear MongoDB atproto and the state's rkey" + ("; back to pending" if row.status == Status.MIGRATED else "")
        return self._diff(Kind.MISSING_RECORD, detail, repair=repair, fix=fix)

    def _duplicate(self, extra: IndexedRecord, keeper: IndexedRecord) -> Difference:
        detail = f"Another record for this ref; keeping {keeper.did}/{keeper.rkey}."

        def fix():
            self.scope.repo(extra.did).record_delete(collection=settings.PAINTING_COLLECTION, rkey=extra.rkey)
            painting_note(self.row, actor=self.actor, message=f"compare_paintings: deleted the duplicate record {extra.uri}; kept {keeper.uri}.")

        return self._diff(Kind.DUPLICATE_RECORD, detail, extra, repair=f"delete {extra.rkey}", fix=fix)

    def _field_mismatch(self, keeper: IndexedRecord) -> Iterator[Difference]:
        expected, complete = expected_fields(self.painting, self.handle, has_recording=bool(self.row and self.row.has_recording))
        problems = field_differences(keeper.value, expected, complete=complete)
        if not problems:
            return
        fix, repair = None, ""
        if complete and self.row.status == Status.MIGRATED and isinstance(keeper.value.get("thumbnail"), dict):
            fix, repair = (lambda: self._rewrite(keeper)), f"rewrite {keeper.rkey} from MongoDB, keeping its thumbnail"
        yield self._diff(Kind.FIELD_MISMATCH, "; ".join(problems), keeper, repair=repair, fix=fix)

    def _rewrite(self, keeper: IndexedRecord) -> None:
        painting = self.painting
        record = painting_record(
            ref=painting.ref, slug=painting.slug, code=painting.code, when=painting.when,
            owner_handle=self.handle if painting.owner else None, nuked=painting.nuked,
            has_recording=painting.has_recording or self.row.has_recording, thumbnail=keeper.value["thumbnail"],
        )  # fmt: skip
        record_validate(record)
        written = self.scope.repo(keeper.did).record_put(collection=settings.PAINTING_COLLECTION, rkey=keeper.rkey, record=record)
        PaintingMigration.objects.filter(pk=self.row.pk).update(record_cid=written.cid, updated_at=timezone.now())
        self.row.record_cid = self.rewritten_cid = written.cid
        painting_note(self.row, actor=self.actor, message=f"compare_paintings: rewrote {written.uri} from MongoDB's fields (new cid {written.cid}).")

    def _rkey_mismatch(self, keeper: IndexedRecord) -> Difference:
        painting = self.painting
        detail = f"MongoDB has rkey {painting.rkey or 'unset'} and uri {painting.uri or 'unset'}; the record is {keeper.uri}."

        def fix():
            source.rkeys_write_back([source.WriteBack(ref=painting.ref, rkey=keeper.rkey, uri=keeper.uri)])
            painting_note(self.row, actor=self.actor, message=f"compare_paintings: wrote atproto.rkey {keeper.rkey} and uri back to MongoDB.")

        return self._diff(Kind.RKEY_MISMATCH, detail, keeper, repair=f"write rkey {keeper.rkey} back to MongoDB", fix=fix)

    def _state_mismatch(self, keeper: IndexedRecord) -> Iterator[Difference]:
        row = self.row
        fields = {"rkey": keeper.rkey, "record_uri": keeper.uri, "record_cid": keeper.cid}
        if row.status == Status.MIGRATED:
            stale = [name for name, value in fields.items() if getattr(row, name) != value and (name != "record_cid" or row.record_cid)]
            if not stale:
                return
            detail = "The state's " + ", ".join(f"{name} {getattr(row, name) or 'unset'!r}" for name in stale) + f" do not match {keeper.uri}."

            def fix():
                fields["record_cid"] = self.rewritten_cid or keeper.cid
                PaintingMigration.objects.filter(pk=row.pk).update(**fields, updated_at=timezone.now())
                painting_note(row, actor=self.actor, message=f"compare_paintings: state now points at {keeper.uri}.")

            yield self._diff(Kind.STATE_MISMATCH, detail, keeper, repair="set the state's rkey/uri/cid from the record", fix=fix)
        elif row.status in (Status.PENDING, Status.FAILED):
            detail = f"The state says {row.status}, but the PDS has the record {keeper.uri}."

            def fix():
                fields["record_cid"] = self.rewritten_cid or keeper.cid
                message = f"compare_paintings: the PDS already has {keeper.uri}."
                if row.status == Status.FAILED:
                    painting_transition(row, to=Status.PENDING, actor=self.actor, message=message)
                painting_transition(row, to=Status.MIGRATED, actor=self.actor, message=message, migrated_at=timezone.now(), **fields)

            yield self._diff(Kind.STATE_MISMATCH, detail, keeper, repair="mark migrated with the record's rkey", fix=fix)
        else:
            reason = f" ({row.get_skip_reason_display()})" if row.skip_reason else ""
            yield self._diff(Kind.STATE_MISMATCH, f"The state says {row.status}{reason}, but the PDS has the record {keeper.uri}.", keeper)


def expected_fields(painting: SourceFields, handle: str, *, has_recording: bool = False) -> tuple[dict, bool]:
    """The compared fields of the record MongoDB's document makes, and
    whether that is all of them (False when the URL or date cannot be known).

    MongoDB knows of a recording only from a guest slug ("image:recording");
    ``has_recording`` is what the migration found on storage (the state row's
    flag), which counts too."""
    expected = {"ref": painting.ref, "slug": painting.slug, "code": painting.code, "nuked": painting.nuked}
    if painting.when is None or (painting.owner and not handle):
        return expected, False
    try:
        record = painting_record(
            ref=painting.ref, slug=painting.slug, code=painting.code, when=painting.when,
            owner_handle=handle if painting.owner else None, nuked=painting.nuked,
            has_recording=painting.has_recording or has_recording, thumbnail=None,
        )  # fmt: skip
    except ImageError:
        return expected, False
    return {name: record[name] for name in COMPARED_FIELDS if name in record}, True


def field_differences(value: dict, expected: dict, *, complete: bool) -> list[str]:
    """Readable "field: record X, MongoDB Y" lines; an absent ``nuked`` reads as false."""
    names = COMPARED_FIELDS if complete else tuple(expected)
    problems = []
    for name in names:
        stored = value.get(name, False if name == "nuked" else None)
        wanted = expected.get(name)
        if stored != wanted:
            problems.append(f"{name}: record {stored!r}, MongoDB {wanted!r}")
    return problems


def _unseen_records(scope: Scope, index: RecordIndex, batch_size: int) -> Iterator[Difference]:
    for batch in index.unseen_records(batch_size):
        refs = [ref for ref, _, _ in batch if _is_object_id(ref)]
        elsewhere = {str(document["_id"]) for document in source.paintings_stream(refs=refs)} if refs else set()
        for ref, did, rkey in batch:
            if ref in elsewhere:
                detail = "The record's painting is outside this comparison (another owner)."
                yield Difference(Kind.WRONG_ACCOUNT, ref=ref, did=did, rkey=rkey, detail=detail)
            else:
                detail = "No MongoDB painting has this ref." if ref else "The record has no ref."
                yield Difference(Kind.ORPHAN_RECORD, ref=ref, did=did, rkey=rkey, detail=detail)


def _state_without_paintings(index: RecordIndex, batch_size: int) -> Iterator[Difference]:
    rows = PaintingMigration.objects.filter(status=Status.MIGRATED).values_list("ref", "account_did", "rkey")
    batch = []
    for row in rows.iterator(chunk_size=batch_size):
        batch.append(row)
        if len(batch) >= batch_size:
            yield from _gone(batch, index)
            batch = []
    yield from _gone(batch, index)


def _gone(batch: list[tuple[str, str, str]], index: RecordIndex) -> Iterator[Difference]:
    if not batch:
        return
    seen = index.seen_among([ref for ref, _, _ in batch])
    for ref, did, rkey in batch:
        if ref not in seen:
            yield Difference(Kind.STATE_MISMATCH, ref=ref, did=did, rkey=rkey, detail="The state says migrated, but MongoDB has no such painting.")


def _is_object_id(ref: str) -> bool:
    try:
        source.object_id(ref)
    except ValueError:
        return False
    return True


@dataclass
class VerifyReport:
    checked: int = 0
    matching: int = 0
    differences: list[str] = field(default_factory=list)


def paintings_verify(paintings: QuerySet, *, actor: str, batch_size: int = 200) -> VerifyReport:
    """Check each painting of ``paintings`` (state rows) against MongoDB and
    its record on the PDS (getRecord by rkey), and note the outcome as an
    event on each. A migrated painting matches when its record exists with
    MongoDB's fields and rkey; any other when its key holds no record.

    Returns a VerifyReport; PDS failures are differences, not exceptions.
    """
    report = VerifyReport()
    anonymous_did = Account.objects.filter(is_anonymous=True).values_list("did", flat=True).first() or ""
    scope = Scope(filters={}, accounts={}, anonymous_did=anonymous_did, narrowed=True)
    batch: list[PaintingMigration] = []
    for row in paintings.order_by("id").iterator(chunk_size=batch_size):
        batch.append(row)
        if len(batch) >= batch_size:
            _verify_batch(batch, scope=scope, actor=actor, report=report)
            batch = []
    if batch:
        _verify_batch(batch, scope=scope, actor=actor, report=report)
    return report


def _verify_batch(rows: list[PaintingMigration], *, scope: Scope, actor: str, report: VerifyReport) -> None:
    documents = source.paintings_stream(refs=[row.ref for row in rows if _is_object_id(row.ref)])
    paintings = {fields.ref: fields for fields in map(source_fields, documents)}
    handles = source.handles_for(fields.owner for fields in paintings.values() if fields.owner)
    for row in rows:
        painting = paintings.get(row.ref)
        try:
            problems, outcome = _verify_one(row, painting, handles.get(painting.owner, "") if painting else "", scope)
        except pds.PdsError as error:
            problems, outcome = [f"the PDS could not be read: {error}"], ""
        report.checked += 1
        if problems:
            report.differences.extend(f"{row}: {problem}" for problem in problems)
            painting_note(row, actor=actor, message="Verified against the PDS: differs: " + "; ".join(problems))
        else:
            report.matching += 1
            painting_note(row, actor=actor, message=f"Verified against the PDS: {outcome}")


def _verify_one(row: PaintingMigration, painting: SourceFields | None, handle: str, scope: Scope) -> tuple[list[str], str]:
    """(problems, what matched) for one state row."""
    if painting is None:
        return ["MongoDB has no such painting"], ""
    should_have = row.status == Status.MIGRATED or bool(painting.rkey)
    did = row.account_did or ("" if painting.owner else scope.anonymous_did)
    if not did:
        return (["no ATProto account to hold its record"], "") if should_have else ([], f"no account, as expected for a {row.status} painting.")
    scope.accounts.setdefault(did, painting.owner)
    judge = PaintingJudge(painting, row, [], handle, scope, actor="")
    rkey = row.rkey or painting.rkey or judge.expected_rkey
    if not rkey:
        return (["no rkey to look the record up by"], "") if should_have else ([], f"no record key, as expected for a {row.status} painting.")
    stored = scope.repo(did).record_get(collection=settings.PAINTING_COLLECTION, rkey=rkey)
    if stored is None:
        if should_have:
            return [f"no record at {did}/{rkey}"], ""
        return [], f"no record, as expected for a {row.status} painting."
    if not should_have:
        if stored.value.get("ref") == painting.ref:
            return [f"the state says {row.status} but the PDS has {stored.uri}"], ""
        return [], f"no record, as expected for a {row.status} painting."
    expected, complete = expected_fields(painting, handle, has_recording=row.has_recording)
    problems = field_differences(stored.value, expected, complete=complete)
    if painting.rkey != stored.rkey:
        problems.append(f"MongoDB's atproto.rkey is {painting.rkey or 'unset'}, the record's {stored.rkey}")
    if row.rkey and row.rkey != stored.rkey:
        problems.append(f"the state's rkey is {row.rkey}, the record's {stored.rkey}")
    return problems, f"the record {stored.uri} matches."
