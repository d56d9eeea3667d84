"""One document (a painting, a mood, ...) against its state row and its
records: every difference, each with the fix --repair applies."""

from collections.abc import Iterator
from dataclasses import dataclass

from django.utils import timezone

from migrator import pds, source
from migrator.images import ImageError
from migrator.kinds import RecordKind
from migrator.lexicon import record_validate
from migrator.models import Transfer, Status
from migrator.services.engine.batch import transfers_migrate
from migrator.services.engine.claims import claimant_new
from migrator.services.engine.finish import recording_learned
from migrator.services.lifecycle import run_label
from migrator.services.state import transfer_note, transfer_transition

from .index import IndexedRecord, Scope
from .report import Difference, DifferenceKind, RepairSkipped

IN_FLIGHT = (Status.QUEUED, Status.RUNNING)  # the engine owns these rows right now


@dataclass
class Judge:
    """Everything compare says about one document, with the fix for each."""

    document: object  # what the kind's ``read`` made of the MongoDB document
    row: Transfer | None
    records: list[IndexedRecord]
    handle: str
    scope: Scope
    actor: str
    kind: RecordKind
    rewritten_cid: str = ""  # set when --repair rewrote the record

    @property
    def expected_did(self) -> str:
        if self.row is not None and self.row.account_did:
            return self.row.account_did
        return "" if self.document.owner else self.scope.anonymous_did

    @property
    def expected_rkey(self) -> str:
        try:
            return self.kind.record_key(when=self.document.when, ref=self.document.ref) if self.document.when else ""
        except ValueError:
            return ""

    def differences(self) -> Iterator[Difference]:
        row, fields = self.row, self.document
        if row is not None and row.status in IN_FLIGHT:
            return
        did = self.expected_did
        if row is None:
            if fields.rkey or self.records:
                yield self._diff(DifferenceKind.STATE_MISMATCH, f"Not in the state table though it has a record or an rkey; run manage.py seed {self.kind.plural}.")
            return
        if not self.records:
            if (row.status == Status.MIGRATED or fields.rkey) and did in self.scope.listed and not self._written_since_listing(did):
                yield self._missing_record()
            return
        keeper, extras = self._keeper()
        for extra in extras:
            yield self._duplicate(extra, keeper)
        if did and keeper.did != did:
            yield self._diff(DifferenceKind.WRONG_ACCOUNT, f"The only kept record is in {keeper.did}, not in the {self.kind.name}'s account {did}.", keeper)
            return
        yield from self._field_mismatch(keeper)
        if (fields.rkey, fields.uri) != (keeper.rkey, keeper.uri):
            yield self._rkey_mismatch(keeper)
        yield from self._state_mismatch(keeper)

    def _written_since_listing(self, did: str) -> bool:
        """Whether a running engine wrote the record after its account was
        listed: looked up by key before calling a record missing."""
        rkeys = {self.row.rkey, self.document.rkey, self.expected_rkey} - {""}
        try:
            stored = [self.scope.repo(did).record_get(collection=self.kind.nsid, rkey=rkey) for rkey in rkeys]
        except pds.PdsError:
            return False
        return any(record and record.value.get("ref") == self.document.ref for record in stored)

    def _diff(self, kind: DifferenceKind, detail: str, record: IndexedRecord | None = None, repair: str = "", fix=None) -> Difference:
        did = record.did if record else self.expected_did
        rkey = record.rkey if record else (self.row.rkey if self.row else "") or self.document.rkey
        if fix is not None:
            fix = self._held(fix)
        return Difference(kind, ref=self.document.ref, did=did, rkey=rkey, detail=detail, repair=repair, fix=fix)

    def _held(self, fix):
        """``fix``, run while compare holds the document as a worker would:
        claimed from exactly the state compare judged (status and last
        change), so no worker can take it meanwhile, and refused with
        RepairSkipped when one took it or changed it since."""
        row = self.row
        if row is None or row.status in (*IN_FLIGHT, Status.SKIPPED):
            return fix

        def held_fix():
            seen = row.status
            holder = claimant_new()
            if not transfer_transition(
                row, to=Status.RUNNING, actor=self.actor, message="compare: held while it repairs.",
                expect={"updated_at": row.updated_at}, claimed_by=holder, claimed_at=timezone.now(),
            ):  # fmt: skip
                raise RepairSkipped(f"The {self.kind.name} changed or was claimed since it was compared; left alone.")
            try:
                fix()
            finally:
                if row.status == Status.RUNNING:  # the fix left its status as it was
                    transfer_transition(row, to=seen, actor=self.actor, message="compare: released after the repair.", holder=holder, claimed_by="")

        return held_fix

    def _keeper(self) -> tuple[IndexedRecord, list[IndexedRecord]]:
        """The record to keep (the one at the document's own TID, else in the
        right account, else the oldest) and the others."""
        ordered = sorted(self.records, key=lambda r: (r.rkey != self.expected_rkey, r.did != self.expected_did, r.rkey))
        return ordered[0], ordered[1:]

    def _missing_record(self) -> Difference:
        row, fields = self.row, self.document
        key = row.rkey or fields.rkey
        at = f" at {key}" if key else ""
        detail = (
            f"The state says {row.status} and MongoDB's {self.kind.migrated_field} is {fields.rkey or 'unset'}, "
            f"but the PDS has no {self.kind.name} record{at} (ref {fields.ref})."
        )
        if row.status == Status.MIGRATED:
            return self._diff(DifferenceKind.MISSING_RECORD, detail, repair=f"write the record back under {key}", fix=self._write_back)

        def fix():
            source.rkeys_clear([fields.ref], kind=self.kind)
            Transfer.objects.filter(pk=row.pk).update(rkey="", record_uri="", record_cid="", updated_at=timezone.now())
            transfer_note(row, actor=self.actor, message=f"compare: the PDS has no record; MongoDB's {self.kind.migrated_field} cleared.")

        return self._diff(DifferenceKind.MISSING_RECORD, detail, repair=f"clear MongoDB {self.kind.key_document} and the state's rkey", fix=fix)

    def _write_back(self) -> None:
        """The record of a migrated document is gone from the PDS (a restore
        of an older backup, a deletion by hand): the engine writes it again
        now, under its own key and from the same fields, uploading its blob
        only when the PDS no longer has it. Raises RepairSkipped when the
        document did not end migrated (its row says why)."""
        row = self.row
        transfer_transition(
            row, to=Status.PENDING, actor=self.actor, claimed_by="", record_cid="",
            message=f"compare: the PDS has no record {row.record_uri or row.rkey}; writing it again under the same key.",
        )  # fmt: skip
        transfers_migrate([row.pk], actor=self.actor, run=run_label(self.actor))
        row.refresh_from_db()
        if row.status != Status.MIGRATED:
            raise RepairSkipped(f"Migrating it again ended {row.status}: {row.last_error or row.skip_detail or 'see its audit trail'}")

    def _duplicate(self, extra: IndexedRecord, keeper: IndexedRecord) -> Difference:
        detail = f"Another record for this ref; keeping {keeper.did}/{keeper.rkey}."

        def fix():
            self.scope.repo(extra.did).record_delete(collection=self.kind.nsid, rkey=extra.rkey)
            transfer_note(self.row, actor=self.actor, message=f"compare: deleted the duplicate record {extra.uri}; kept {keeper.uri}.")

        return self._diff(DifferenceKind.DUPLICATE_RECORD, detail, extra, repair=f"delete {extra.rkey}", fix=fix)

    def _field_mismatch(self, keeper: IndexedRecord) -> Iterator[Difference]:
        expected, complete = expected_fields(self.document, self.handle, has_recording=self._has_recording(keeper), kind=self.kind)
        problems = field_differences(keeper.value, expected, complete=complete, kind=self.kind)
        if not problems:
            return
        fix, repair = None, ""
        keeps_blob = self.kind.blob_field is None or isinstance(keeper.value.get(self.kind.blob_field), dict)
        if complete and self.row.status == Status.MIGRATED and keeps_blob:
            keeping = f", keeping its {self.kind.blob_field}" if self.kind.blob_field else ""
            fix, repair = (lambda: self._rewrite(keeper)), f"rewrite {keeper.rkey} from MongoDB{keeping}"
        yield self._diff(DifferenceKind.FIELD_MISMATCH, "; ".join(problems), keeper, repair=repair, fix=fix)

    def _has_recording(self, keeper: IndexedRecord) -> bool:
        """A recording the row knows of, or one the record has: the attempt
        that wrote it found it on storage (a rebuilt state table does not
        know it yet), so a rewrite keeps it, as the engine's does."""
        return bool(self.row and self.row.has_recording) or self.kind.recording_in(keeper.value)

    def _rewrite(self, keeper: IndexedRecord) -> None:
        fields, kind = self.document, self.kind
        blob = keeper.value[kind.blob_field] if kind.blob_field else None
        has_recording = self._has_recording(keeper)
        record = kind.record_from_source(fields, handle=self.handle, has_recording=has_recording, blob=blob)
        record_validate(record, nsid=kind.nsid)
        written = self.scope.repo(keeper.did).record_put(collection=kind.nsid, rkey=keeper.rkey, record=record)
        fingerprint = kind.fingerprint({**vars(fields), **kind.row_values(fields), "owner_handle": self.handle if fields.owner else ""})
        learned = recording_learned(self.row, has_recording, kind=kind)
        Transfer.objects.filter(pk=self.row.pk).update(record_cid=written.cid, record_fingerprint=fingerprint, updated_at=timezone.now(), **learned)
        if learned:
            self.row.content = learned["content"]
        self.row.record_cid = self.rewritten_cid = written.cid
        transfer_note(self.row, actor=self.actor, message=f"compare: rewrote {written.uri} from MongoDB's fields (new cid {written.cid}).")

    def _rkey_mismatch(self, keeper: IndexedRecord) -> Difference:
        fields = self.document
        detail = f"MongoDB has rkey {fields.rkey or 'unset'} and uri {fields.uri or 'unset'}; the record is {keeper.uri}."

        def fix():
            source.rkeys_write_back([source.WriteBack(ref=fields.ref, rkey=keeper.rkey, uri=keeper.uri, cid=keeper.cid)], kind=self.kind)
            transfer_note(self.row, actor=self.actor, message=f"compare: wrote {self.kind.migrated_field} {keeper.rkey} and uri back to MongoDB.")

        return self._diff(DifferenceKind.RKEY_MISMATCH, detail, keeper, repair=f"write rkey {keeper.rkey} back to MongoDB", fix=fix)

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
                Transfer.objects.filter(pk=row.pk).update(**fields, updated_at=timezone.now())
                transfer_note(row, actor=self.actor, message=f"compare: state now points at {keeper.uri}.")

            yield self._diff(DifferenceKind.STATE_MISMATCH, detail, keeper, repair="set the state's rkey/uri/cid from the record", fix=fix)
        elif row.status in (Status.PENDING, Status.FAILED, Status.WAITING):
            detail = f"The state says {row.status}, but the PDS has the record {keeper.uri}."

            def fix():
                fields["record_cid"] = self.rewritten_cid or keeper.cid
                message = f"compare: the PDS already has {keeper.uri}."
                if row.status in (Status.FAILED, Status.WAITING):
                    transfer_transition(row, to=Status.PENDING, actor=self.actor, message=message)
                # What the record was written from is unknown: the next seed puts
                # it back to pending, and the engine adopts or rewrites it.
                transfer_transition(
                    row, to=Status.MIGRATED, actor=self.actor, message=message, migrated_at=timezone.now(),
                    record_fingerprint="", claimed_by="", **fields,
                )  # fmt: skip

            yield self._diff(DifferenceKind.STATE_MISMATCH, detail, keeper, repair="mark migrated with the record's rkey", fix=fix)
        else:
            reason = f" ({row.get_skip_reason_display()})" if row.skip_reason else ""
            yield self._diff(DifferenceKind.STATE_MISMATCH, f"The state says {row.status}{reason}, but the PDS has the record {keeper.uri}.", keeper)


def expected_fields(fields, handle: str, *, has_recording: bool = False, kind: RecordKind) -> tuple[dict, bool]:
    """The compared fields of the record MongoDB's document makes, and
    whether that is all of them (False when the URL or date cannot be known).

    MongoDB knows of a recording only from a guest slug ("image:recording");
    ``has_recording`` is what the migration found on storage (the state row's
    flag), which counts too."""
    # What is known without the record: the fields it copies as they are.
    expected = {name: getattr(fields, name) for name in kind.compared_fields if name != "when" and hasattr(fields, name)}
    if fields.when is None or (kind.needs_handle and fields.owner and not handle):
        return expected, False
    try:
        record = kind.record_from_source(fields, handle=handle, has_recording=has_recording, blob=None)
    except ImageError:
        return expected, False
    return {name: record[name] for name in kind.compared_fields if name in record}, True


def field_differences(value: dict, expected: dict, *, complete: bool, kind: RecordKind) -> list[str]:
    """Readable "field: record X, MongoDB Y" lines; an absent deleted flag
    (the painting's ``nuked``) reads as false."""
    names = kind.compared_fields if complete else tuple(expected)
    problems = []
    for name in names:
        stored = value.get(name, False if name == kind.deleted_flag else None)
        wanted = expected.get(name)
        if stored != wanted:
            problems.append(f"{name}: record {stored!r}, MongoDB {wanted!r}")
    return problems
