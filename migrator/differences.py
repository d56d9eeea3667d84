"""What a comparison of MongoDB, the state table and the PDS can find: the
kinds of difference and what each is called. Below the services, so that
what reads the last verification (selectors, the dashboard) need not import
the comparison that made it."""

from enum import StrEnum

from migrator.kinds import PAINTING, RecordKind


class DifferenceKind(StrEnum):
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
        """The label, of paintings."""
        return self.label_for(PAINTING)

    def label_for(self, kind: RecordKind) -> str:
        """The label, of ``kind``'s documents ("Moods without a record")."""
        return KIND_LABELS[self].format(Plural=kind.plural.capitalize(), name=kind.name, key=kind.key_document)


KIND_LABELS = {
    DifferenceKind.MISSING_RECORD: "{Plural} without a record",
    DifferenceKind.ORPHAN_RECORD: "Records without a {name}",
    DifferenceKind.DUPLICATE_RECORD: "Duplicate records for one ref",
    DifferenceKind.FIELD_MISMATCH: "Record fields differ from MongoDB",
    DifferenceKind.RKEY_MISMATCH: "MongoDB {key}.rkey/uri differs from the record",
    DifferenceKind.STATE_MISMATCH: "State table inconsistent with MongoDB/PDS",
    DifferenceKind.WRONG_ACCOUNT: "Records in another account's repo",
    DifferenceKind.ACCOUNT_UNREADABLE: "Accounts whose records could not be listed",
}
