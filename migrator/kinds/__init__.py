"""The kinds of record the console moves from MongoDB to ATProto.

A kind is a declaration: its names (the record's NSID, the MongoDB
collection), the fields it reads of a document, where its record's key is
written back, what marks a document deleted, and the pure functions that
read a document, say what is wrong with it and build its record. The
engine, the seed, compare and the MongoDB boundary take a kind as data and
never ask which one it is. ``kind_for`` looks one up by name (or by the
plural the commands take: ``moods``).

Adding a kind is adding a module to this package that defines ``KIND``
(a RecordKind), its lexicon under LEXICON_DIR and its sample data under
``migrator.samples``: the registry finds the module by itself.

What every kind's functions share lives here too: a document's ``ref``,
the Problem that says why it cannot become a record, ATProto's datetimes.
"""

import datetime as dt
import re
import functools
import hashlib
import importlib
import json
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from bson import ObjectId

from migrator.models import SkipReason
from migrator.tid import MAX_MICROS, micros_since_epoch, tid_for_painting

REF_MAX_LENGTH = 64  # Transfer.ref


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


def shown(value) -> str:
    """A value as a person reads it in a skip reason: its type and a short,
    printable excerpt."""
    text = repr(value)
    return f"{type(value).__name__} {text[:40] + '…' if len(text) > 40 else text}"


def text_of(value) -> str:
    """A field that should be text: itself when it is, else ""."""
    return value if isinstance(value, str) else ""


def owner_of(document: dict) -> tuple[str, str]:
    """(auth0 sub, problem) of a document's ``user``. A missing or null
    ``user`` is a guest's; any other value that is not a non-empty string
    cannot name an owner."""
    user = document.get("user")
    if user is None:
        return "", ""
    if isinstance(user, str) and user.strip():
        return user, ""
    return "", f"`user` is {shown(user)}, not a user id: the owner is unknown."


def flag_of(document: dict, name: str) -> tuple[bool, str]:
    """(value, problem) of a true/false field (``nuked``, ``deleted``):
    missing or null reads as false; anything else but a bool is a problem,
    since guessing could publish what was deleted."""
    value = document.get(name)
    if value is None or isinstance(value, bool):
        return value is True, ""
    return False, f"`{name}` is {shown(value)}, not true or false."


# A record key the console can have written: ATProto's record-key characters,
# no longer than the state table keeps (its keys are 13-character TIDs).
RECORD_KEY = re.compile(r"[A-Za-z0-9._:~-]{1,32}")
URI_MAX = 512


def key_of(document: dict, key_document: str) -> tuple[str, str]:
    """(rkey, uri) a document has written back. Other types, and text that
    no record key or at:// URI of ours can be (too long, other characters),
    read as absent: the engine writes at the document's own key, and writes
    that back over them."""
    keys = document.get(key_document) if isinstance(document.get(key_document), dict) else {}
    rkey, uri = text_of(keys.get("rkey")), text_of(keys.get("uri"))
    rkey = rkey if RECORD_KEY.fullmatch(rkey) else ""
    uri = uri if uri.startswith("at://") and len(uri) <= URI_MAX else ""
    return rkey, uri


def when_of(document: dict) -> dt.datetime | None:
    when = document.get("when")
    return when if isinstance(when, dt.datetime) else None


@dataclass(frozen=True, kw_only=True)
class DocumentFields:
    """What every kind reads of a document (a kind's own fields subclass it):
    its ``ref``, owner (the auth0 sub, "" for a guest's), ``when``, deleted
    flag and the key MongoDB has of its record, each with the problem that
    makes it unusable ("" when there is none)."""

    ref: str
    owner: str
    when: dt.datetime | None
    rkey: str
    uri: str
    ref_is_object_id: bool = True
    owner_problem: str = ""
    nuked: bool = False  # the kind's deleted flag
    deleted_problem: str = ""
    has_recording: bool = False
    guests: ClassVar[bool] = True  # whether a document without an owner is a guest's

    @property
    def is_anonymous(self) -> bool:
        return self.guests and not self.owner and not self.owner_problem


def common_fields(document: dict, *, key_document: str, deleted_flag: str | None = None, author_of: str = "") -> dict:
    """The keyword arguments of DocumentFields read from ``document``
    leniently. ``author_of`` names what a document without ``user`` is
    (a mood, a post) when the kind has no guests: its owner is then unknown."""
    owner, owner_problem = owner_of(document)
    if author_of and not owner and not owner_problem:
        owner_problem = f"The {author_of} has no author (`user` is missing): it is never anyone's but its author's."
    nuked, deleted_problem = flag_of(document, deleted_flag) if deleted_flag else (False, "")
    rkey, uri = key_of(document, key_document)
    return {
        "ref": document_ref(document.get("_id")), "owner": owner, "when": when_of(document), "rkey": rkey, "uri": uri,
        "ref_is_object_id": isinstance(document.get("_id"), ObjectId), "owner_problem": owner_problem,
        "nuked": nuked, "deleted_problem": deleted_problem,
    }  # fmt: skip


def common_problem(document: dict, fields, *, key_field: str) -> Problem | None:
    """What is wrong with any kind's document before its own fields: an
    ``_id`` that is not an ObjectId, a ``user`` that names no one, a deleted
    flag that is not true or false, a ``when`` that is not a date a record
    key can hold. ``fields`` is what the kind's ``read`` made of it."""
    if not fields.ref_is_object_id:
        return Problem(SkipReason.BAD_REF, f"`_id` is {shown(document.get('_id'))}, not an ObjectId: no record key can be made and {key_field} could not be written back.")
    if fields.owner_problem:
        return Problem(SkipReason.BAD_OWNER, fields.owner_problem)
    if fields.deleted_problem:
        return Problem(SkipReason.BAD_NUKED, fields.deleted_problem)
    if fields.when is None:
        value = document.get("when")
        what = "missing" if value is None else f"{type(value).__name__} {str(value)[:40]!r}"
        return Problem(SkipReason.BAD_WHEN, f"`when` is not a date ({what}).")
    if not 0 <= micros_since_epoch(fields.when) <= MAX_MICROS:
        return Problem(SkipReason.BAD_WHEN, f"`when` is {fields.when:%Y-%m-%d}, outside the dates a record key can hold (1970 to 2255).")
    return None


def text_problem(document: dict, name: str, *, shown_as: str, limit: int | None, required: bool = True) -> Problem | None:
    """What is wrong with a text field the record copies: missing, not
    text, empty (when ``required``) or longer than the lexicon's ``limit``
    in UTF-8 bytes (what ATProto's maxLength counts)."""
    value = document.get(name)
    if value is None:
        return Problem(SkipReason.MISSING_FIELD, f"The document has no {shown_as} (`{name}`).") if required else None
    if not isinstance(value, str):
        return Problem(SkipReason.BAD_FIELD, f"`{name}` is {shown(value)}, not text.")
    if required and not value.strip():
        return Problem(SkipReason.MISSING_FIELD, f"The {shown_as} is empty.")
    size = len(value.encode("utf-8", "surrogatepass"))
    if limit is not None and size > limit:
        return Problem(SkipReason.TOO_LONG, f"The {shown_as} is {size:,} bytes of UTF-8; the lexicon allows {limit:,}.")
    return None


def digest(*parts: str) -> str:
    """A short, stable digest of text parts (fingerprints and shapes)."""
    return hashlib.blake2b("\x1f".join(parts).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def lexicon_path(nsid: str):
    """Where the console's lexicon of ``nsid`` is (LEXICON_DIR/computer/aesthetic/mood.json)."""
    from django.conf import settings

    return _lexicon_path(settings.LEXICON_DIR, nsid)


@functools.cache
def _lexicon_path(folder, nsid: str):
    # Asked for each document a seed reads: the path is made once.
    return folder.joinpath(*nsid.split(".")).with_suffix(".json")


def lexicon_limits(nsid: str) -> dict[str, int]:
    """maxLength of each property of ``nsid``'s record that has one (read
    again when the file changes: a new version lifts what it now allows)."""
    path = lexicon_path(nsid)
    return _lexicon_limits(path, path.stat().st_mtime_ns)


@functools.cache
def _lexicon_limits(path, _mtime: int) -> dict[str, int]:
    properties = json.loads(path.read_text())["defs"]["main"]["record"]["properties"]
    return {name: spec["maxLength"] for name, spec in properties.items() if "maxLength" in spec}


def lexicon_shape(nsid: str, *parts: str) -> str:
    """A digest of ``nsid``'s lexicon and ``parts`` (the kind's build number,
    the settings its records are built from): a kind's ``record_shape``."""
    path = lexicon_path(nsid)
    return _lexicon_shape(path, path.stat().st_mtime_ns, parts)


@functools.cache
def _lexicon_shape(path, _mtime: int, parts: tuple[str, ...]) -> str:
    lexicon = json.dumps(json.loads(path.read_text()), sort_keys=True, separators=(",", ":"))
    return digest(*parts, lexicon)


def datetime_string(when: dt.datetime) -> str:
    """ATProto's datetime format: UTC, milliseconds, a Z."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, kw_only=True)
class RecordKind:
    """What the generic machine needs to know of one kind of record."""

    name: str  # what a person calls one ("painting")
    plural: str  # what the commands take for all of them ("paintings")
    nsid: str  # the record's lexicon id, and its collection on the PDS
    mongodb_collection: str  # where its documents are
    fields: tuple[str, ...]  # the fields read of each document (the projection)
    compared_fields: tuple[str, ...]  # the record's fields compare checks against MongoDB's document
    # A document read leniently: never raises for its content. What it makes
    # is a DocumentFields (ref, owner, when, nuked, rkey, uri, ...) with the
    # kind's own fields, the unique field's value among them.
    read: Callable[[dict], Any]
    # (what ``read`` made) -> the kind's own part of its state row: its
    # ``label`` and its ``content`` (the fields its record is built from).
    row_values: Callable[[Any], dict]
    # (document, what ``read`` made of it, *, duplicate_of) -> Problem | None.
    problem: Callable[..., Problem | None]
    # A digest of the row's mirrored fields a record is made of (and its account's).
    fingerprint: Callable[[Mapping[str, Any]], str]
    # (state row, *, has_recording, blob) -> record. Raises ImageError.
    record_from_row: Callable[..., dict]
    # (what ``read`` made of a document, *, handle, has_recording, blob) -> record. Raises ImageError.
    record_from_source: Callable[..., dict]
    # A digest of everything besides a document's fields that decides its record.
    record_shape: Callable[[], str]
    # The subdocument the record's key is written back into, and which of
    # source.WriteBack's fields go there (``rkeys_clear`` removes it whole).
    key_document: str = "atproto"
    key_fields: tuple[str, ...] = ("rkey", "uri")
    # The field whose true marks a document deleted (None: a deleted
    # document is removed); compare reads it as false when a record lacks it.
    deleted_flag: str | None = None
    # () -> why a deleted document has no record, or "" when it keeps one
    # (a nuked painting under NUKED_PAINTINGS=flag says so in its record).
    deleted_why: Callable[[], str] = lambda: ""
    # The field that must be unique across documents (None: nothing is); the
    # oldest document keeps a value that is used more than once.
    unique_field: str | None = None
    # (*, when, ref) -> the record's key. Raises ValueError when none can be made.
    record_key: Callable[..., str] = tid_for_painting
    blob_field: str | None = None  # the record's field that holds its blob (None: it has none)
    # (state row) -> the blob: content, mime_type, size and fallback (how it
    # was made). Raises ImageError or ThumbnailError. None without a blob.
    blob_make: Callable[[Any], Any] | None = None
    label_name: str = "label"  # what the admin calls the row's label ("slug", "mood", "code")
    # The keys of the row's content a record cannot be made without (nor
    # can it without a date).
    required: tuple[str, ...] = ()
    # Keys of the row's content the admin's list of the kind shows beside
    # the label (a painting's code).
    list_fields: tuple[str, ...] = ()
    needs_handle: bool = False  # the record is built from the owner's handle (an image URL)
    # Whether the record a stored value is keeps a blob that is still the
    # document's (a rewrite then reuses it: nothing fetched or uploaded).
    same_blob: Callable[[Any, dict], bool] = lambda row, value: False
    # Whether a document may have a recording on storage that its record
    # links to (the painting's .zip; the row's content keeps ``recording``),
    # whether a stored record names one, and whether the storage has one
    # for a row; nothing for the other kinds.
    recordings: bool = False
    recording_in: Callable[[dict], bool] = lambda value: False
    recording_exists: Callable[[Any], bool] = lambda row: False
    # The skip reason of a document whose blob's source does not exist yet
    # (a tape's MP4 before the oven made it), and whether it does now: a
    # full seed puts such rows back to pending once it does.
    waits_for_blob: str | None = None
    blob_ready: Callable[[Any], bool] | None = None

    @property
    def projection(self) -> dict[str, int]:
        """The MongoDB projection of ``fields``."""
        return dict.fromkeys(self.fields, 1)

    @property
    def migrated_field(self) -> str:
        """The dotted field whose presence says a document has a record."""
        return f"{self.key_document}.rkey"


def _declared() -> dict[str, RecordKind]:
    """Every module of this package that defines ``KIND``, the painting
    first and the others by name."""
    kinds = [importlib.import_module(f"{__name__}.{module.name}").KIND for module in pkgutil.iter_modules(__path__)]
    kinds.sort(key=lambda kind: (kind.name != "painting", kind.name))
    return {kind.name: kind for kind in kinds}


# Imported last: each kind's module builds its RecordKind from this one.
from migrator.kinds.painting import PAINTING  # noqa: E402

KINDS: dict[str, RecordKind] = _declared()


def kind_for(name: str) -> RecordKind:
    """The kind called ``name`` ("mood") or its plural ("moods"). Raises
    LookupError for one not declared."""
    for kind in KINDS.values():
        if name in (kind.name, kind.plural):
            return kind
    raise LookupError(f"No kind of record is called {name!r}; there are: {', '.join(kind.plural for kind in KINDS.values())}.")


__all__ = ["KINDS", "PAINTING", "REF_MAX_LENGTH", "Problem", "RecordKind", "datetime_string", "document_ref", "kind_for"]
