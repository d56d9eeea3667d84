"""The kinds of record the console moves from MongoDB to ATProto.

A kind is a declaration: its names (the record's NSID, the MongoDB
collection), the fields it reads of a document, where its record's key is
written back, what marks a document deleted, and the pure functions that
read a document, say what is wrong with it and build its record. The
engine, the seed, compare and the MongoDB boundary take a kind as data and
never ask which one it is. ``kind_for`` looks one up by name.

What every kind's functions share lives here too: a document's ``ref``,
the Problem that says why it cannot become a record, ATProto's datetimes.
"""

import datetime as dt
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bson import ObjectId

REF_MAX_LENGTH = 64  # PaintingMigration.ref


@dataclass(frozen=True)
class Problem:
    reason: str  # a SkipReason value
    detail: str


def document_ref(value) -> str:
    """The state table's ``ref`` for a document's ``_id``: the hex of an
    ObjectId; for anything else a stable text of at most REF_MAX_LENGTH
    characters (such a painting is skipped, but still has a row)."""
    if isinstance(value, ObjectId):
        return str(value)
    text = f"{type(value).__name__}:{value}"
    if len(text) <= REF_MAX_LENGTH:
        return text
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
    return f"{text[: REF_MAX_LENGTH - 17]}~{digest}"


def datetime_string(when: dt.datetime) -> str:
    """ATProto's datetime format: UTC, milliseconds, a Z."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class RecordKind:
    """What the generic machine needs to know of one kind of record."""

    name: str  # what a person calls one ("painting")
    nsid: str  # the record's lexicon id, and its collection on the PDS
    mongodb_collection: str  # where its documents are
    fields: tuple[str, ...]  # the fields read of each document (the projection)
    # The subdocument the record's key is written back into, and which of
    # source.WriteBack's fields go there (``rkeys_clear`` removes it whole).
    key_document: str
    key_fields: tuple[str, ...]
    # The field whose true marks a document deleted (None: a deleted
    # document is removed); compare reads it as false when a record lacks it.
    deleted_flag: str | None
    # The field that must be unique across documents (None: nothing is); the
    # oldest document keeps a value that is used more than once.
    unique_field: str | None
    blob_field: str | None  # the record's field that holds its blob (None: it has none)
    compared_fields: tuple[str, ...]  # the record's fields compare checks against MongoDB's document
    # A document read leniently: never raises for its content.
    read: Callable[[dict], Any]
    # (document, what ``read`` made of it, *, duplicate_of) -> Problem | None.
    problem: Callable[..., Problem | None]
    # A digest of the row's mirrored fields a record is made of (and its account's).
    fingerprint: Callable[[Mapping[str, Any]], str]
    # (state row, *, has_recording, blob) -> record. Raises ImageError.
    record_from_row: Callable[..., dict]
    # (what ``read`` made of a document, *, handle, has_recording, blob) -> record. Raises ImageError.
    record_from_source: Callable[..., dict]
    # (*, when, ref) -> the record's key. Raises ValueError when none can be made.
    record_key: Callable[..., str]
    # A digest of everything besides a document's fields that decides its record.
    record_shape: Callable[[], str]
    # (state row) -> the blob's bytes and type. Raises ImageError or ThumbnailError.
    blob_make: Callable[[Any], Any]

    @property
    def projection(self) -> dict[str, int]:
        """The MongoDB projection of ``fields``."""
        return dict.fromkeys(self.fields, 1)

    @property
    def migrated_field(self) -> str:
        """The dotted field whose presence says a document has a record."""
        return f"{self.key_document}.rkey"


# Imported last: the painting module builds its RecordKind from this one.
from migrator.kinds.painting import PAINTING  # noqa: E402

KINDS: dict[str, RecordKind] = {kind.name: kind for kind in (PAINTING,)}


def kind_for(name: str) -> RecordKind:
    """The kind called ``name``. Raises LookupError for one not declared."""
    try:
        return KINDS[name]
    except KeyError:
        raise LookupError(f"No kind of record is called {name!r}; there are: {', '.join(sorted(KINDS))}.") from None


__all__ = ["KINDS", "PAINTING", "REF_MAX_LENGTH", "Problem", "RecordKind", "datetime_string", "document_ref", "kind_for"]
