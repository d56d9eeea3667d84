"""The MongoDB boundary: the only module that talks to aesthetic.computer's
database (pymongo only).

It streams a kind's documents (paintings: migrator.kinds) with cursors (never
a whole collection in memory), reads owners' handles and ATProto credentials,
and writes each record's key back where the kind keeps it (``atproto.rkey``).
Write-backs always address documents by ``_id``: that is the one lookup every
MongoDB serves from an index.
"""

import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from bson import ObjectId
from bson.errors import InvalidId
from django.conf import settings
import pymongo
from pymongo import MongoClient, UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database

from migrator.kinds import PAINTING, RecordKind

PAINTING_FIELDS = PAINTING.projection
BATCH_SIZE = 1000

_clients: dict[tuple[int, str], MongoClient] = {}
_clients_lock = threading.Lock()


class SourceError(Exception):
    """MongoDB could not be read or written. Always transient: retry later."""


class WrongDatabase(SourceError):
    """MongoDB answers, but the configured database is not the one the
    migration came from (a typo in MONGODB_DB, an empty restore). Nothing
    may be read from it as truth: a run against it would take every
    painting for deleted."""


def database() -> Database:
    """The configured database, through one client per process.

    The client is created on first use (never at import) and again after a
    fork, since a MongoClient must not cross one (django-q2 forks workers).
    """
    key = (os.getpid(), settings.MONGODB_URI)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            # datetime_auto: a date outside Python's range decodes as a
            # DatetimeMS (which the seed reports) instead of failing the cursor.
            client = MongoClient(
                settings.MONGODB_URI, tz_aware=True, datetime_conversion="DATETIME_AUTO",
                serverSelectionTimeoutMS=10_000, appname="painting-migrator",
            )  # fmt: skip
            _clients[key] = client
    return client[settings.MONGODB_DB]


def clients_close() -> None:
    """Close this process's MongoDB client; the next read opens another.
    Its monitor threads then stop while the process works on: a client left
    open makes the interpreter's exit wait for them (up to half a second)."""
    with _clients_lock:
        client = _clients.pop((os.getpid(), settings.MONGODB_URI), None)
    if client is not None:
        client.close()


def kind_collection(kind: RecordKind) -> Collection:
    """The MongoDB collection that holds ``kind``'s documents."""
    return database()[kind.mongodb_collection]


def collection_exists(kind: RecordKind) -> bool:
    """Whether the database has ``kind``'s collection at all."""
    return bool(database().list_collection_names(filter={"name": kind.mongodb_collection}))


def server_ping(*, timeout: float) -> None:
    """Ask MongoDB to answer a ping within ``timeout`` seconds (finding the
    server included). Reads nothing. Raises PyMongoError."""
    with pymongo.timeout(timeout):
        database().command("ping")


@dataclass(frozen=True)
class Credentials:
    """A user's ATProto account as MongoDB keeps it (``users.atproto``).

    ``problem`` says why it cannot be used ("" when it can); it names types,
    never values, since ``password`` is a secret.
    """

    did: str
    handle: str
    password: str = field(repr=False)
    problem: str = ""

    def __str__(self) -> str:
        return self.handle or self.did

    @property
    def usable(self) -> bool:
        return not self.problem


def documents_query(
    *,
    anonymous: bool | None = None,
    owner: str | None = None,
    migrated: bool | None = None,
    refs: Iterable[str] | None = None,
    after_ref: str | None = None,
    kind: RecordKind,
) -> dict:
    """The MongoDB filter for paintings.

    ``anonymous`` True keeps guest paintings (``user`` missing or null: MongoDB's
    ``{user: null}`` matches both), False keeps the rest; ``owner`` is an auth0 sub; ``migrated`` tests for
    the key written back (``atproto.rkey``); ``after_ref`` resumes after an ObjectId (hex).
    """
    query: dict = {}
    if anonymous is True:
        query["user"] = None
    elif anonymous is False:
        query["user"] = {"$ne": None}
    if owner is not None:
        query["user"] = owner
    if migrated is not None:
        query[kind.migrated_field] = {"$exists": migrated}
    id_filter = {}
    if refs is not None:
        id_filter["$in"] = [object_id(ref) for ref in refs]
    if after_ref:
        id_filter["$gt"] = object_id(after_ref)
    if id_filter:
        query["_id"] = id_filter
    return query


def object_id(ref: str) -> ObjectId:
    try:
        return ObjectId(ref)
    except (InvalidId, TypeError) as error:
        raise ValueError(f"{ref!r} is not a MongoDB ObjectId.") from error


def is_object_id(ref: str) -> bool:
    """Whether ``ref`` is the hex of an ObjectId."""
    try:
        object_id(ref)
    except ValueError:
        return False
    return True


def documents_stream(*, batch_size: int = BATCH_SIZE, limit: int = 0, kind: RecordKind, **filters) -> Iterator[dict]:
    """Yield ``kind``'s documents (its fields only) in ``_id`` order, fetched
    ``batch_size`` at a time. Takes the filters of ``documents_query``."""
    cursor = (
        kind_collection(kind)
        .find(documents_query(kind=kind, **filters), kind.projection, batch_size=batch_size, no_cursor_timeout=False)
        .sort("_id", 1)
        .limit(limit)
    )
    with cursor:
        yield from cursor


def documents_batches(*, batch_size: int = BATCH_SIZE, kind: RecordKind, **filters) -> Iterator[list[dict]]:
    """``documents_stream`` in lists of at most ``batch_size`` documents."""
    batch: list[dict] = []
    for document in documents_stream(batch_size=batch_size, kind=kind, **filters):
        batch.append(document)
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def refs_present(refs: Iterable[str], *, kind: RecordKind) -> set[str]:
    """The refs among ``refs`` whose document (of ``kind``) MongoDB has
    (served by the ``_id`` index). Refs that are not ObjectIds are never
    present."""
    ids = [object_id(ref) for ref in refs if is_object_id(ref)]
    if not ids:
        return set()
    return {str(document["_id"]) for document in kind_collection(kind).find({"_id": {"$in": ids}}, {"_id": 1})}


def refs_in_order(*, kind: RecordKind, batch_size: int = 5000) -> Iterator[str]:
    """The ref of every document of ``kind`` whose ``_id`` is an ObjectId,
    in ascending order (the hex of an ObjectId sorts as its bytes do): one
    read of the collection's ids, streamed in batches (served by the ``_id``
    index on MongoDB), to be merged with the state table's refs."""
    documents = kind_collection(kind).find({"_id": {"$type": "objectId"}}, {"_id": 1}).sort("_id", 1).batch_size(batch_size)
    for document in documents:
        yield str(document["_id"])


def database_check(*, known_refs: list[str], kind: RecordKind) -> None:
    """Refuse a database that cannot be aesthetic.computer's: one without
    ``kind``'s collection, or one that has none of ``known_refs`` (a sample
    of the documents the state table knows). Raises WrongDatabase naming the
    database, or PyMongoError when MongoDB cannot be reached."""
    db = database()
    where = f"MongoDB database {db.name!r}"
    collection = kind.mongodb_collection
    if not db.list_collection_names(filter={"name": collection}):
        raise WrongDatabase(f"{where} has no {collection} collection: is MONGODB_DB (or MONGODB_URI) right? Nothing was changed.")
    ids = [object_id(ref) for ref in known_refs if is_object_id(ref)]
    if ids and not db[collection].count_documents({"_id": {"$in": ids}}, limit=1):
        raise WrongDatabase(
            f"{where} has none of the {len(ids)} {collection} the console checked of those it has migrated or seeded: "
            "is MONGODB_DB (or MONGODB_URI) right? Nothing was changed."
        )


def documents_count(*, kind: RecordKind, **filters) -> int:
    return kind_collection(kind).count_documents(documents_query(kind=kind, **filters))


def owner_for_handle(handle: str) -> str | None:
    """The auth0 sub behind an aesthetic.computer handle (``@jeffrey`` or
    ``jeffrey``), or None when no one has it."""
    document = database()["@handles"].find_one({"handle": handle.removeprefix("@")}, {"_id": 1})
    return document["_id"] if document and isinstance(document["_id"], str) else None


def _owners_filter(owners: Iterable[str] | None) -> dict | None:
    """The filter on ``_id`` for these auth0 subs ({} for None: every user),
    or None when there are none to look for."""
    if owners is None:
        return {}
    owners = list(set(owners))
    return {"_id": {"$in": owners}} if owners else None


def handles_for(owners: Iterable[str] | None) -> dict[str, str]:
    """Map auth0 subs (None: every user's) to their handles (without ``@``).
    Unknown subs, and handles that are not non-empty text, are absent (the
    owner then has no handle, a reason to skip their paintings)."""
    if (query := _owners_filter(owners)) is None:
        return {}
    cursor = database()["@handles"].find(query, {"handle": 1})
    return {document["_id"]: handle for document in cursor if isinstance(handle := document.get("handle"), str) and handle}


def credentials_for(owners: Iterable[str] | None) -> dict[str, Credentials]:
    """Map auth0 subs (None: every user's) to their ATProto credentials. A
    user with no ``atproto`` entry at all is absent; one whose entry cannot
    be used (a field missing or not text) has Credentials whose ``problem``
    says why."""
    if (query := _owners_filter(owners)) is None:
        return {}
    cursor = database().users.find(query, {"atproto": 1})
    found = {}
    for document in cursor:
        credentials = _credentials(document.get("atproto"))
        if credentials is not None:
            found[document["_id"]] = credentials
    return found


def _credentials(atproto) -> Credentials | None:
    if atproto is None:
        return None
    if not isinstance(atproto, dict):
        return Credentials(did="", handle="", password="", problem=f"users.atproto is {type(atproto).__name__}, not a document.")
    fields = {name: atproto.get(name) for name in ("did", "handle", "password")}
    for name in ("handle", "password"):
        if fields[name] is None or fields[name] == "":
            return Credentials(did="", handle="", password="", problem=f"users.atproto has no {name}.")
    wrong = [f"{name} is {type(value).__name__}" for name, value in fields.items() if value is not None and not isinstance(value, str)]
    if wrong:
        return Credentials(did="", handle="", password="", problem=f"users.atproto is unusable: {', '.join(wrong)}, not text.")
    return Credentials(did=fields["did"] or "", handle=fields["handle"], password=fields["password"])


def users_estimate() -> int:
    """About how many users and handles MongoDB holds (the larger count;
    from the collections' metadata, not a scan)."""
    return max(database().users.estimated_document_count(), database()["@handles"].estimated_document_count())


def documents_estimate(*, kind: RecordKind) -> int:
    """About how many documents ``kind``'s collection holds (its metadata)."""
    return kind_collection(kind).estimated_document_count()


def users_without_account() -> list[dict]:
    """Users with ATProto credentials (``atproto.handle`` and ``password``)
    but no account yet (no ``atproto.did``): the sample corpus's, before
    ``create_sample_accounts``. Only ``_id`` and ``atproto`` are read."""
    query = {
        "atproto.handle": {"$type": "string"},
        "atproto.password": {"$type": "string"},
        "$or": [{"atproto.did": {"$exists": False}}, {"atproto.did": {"$in": [None, ""]}}],
    }
    return list(database().users.find(query, {"atproto": 1}))


def user_did_write_back(owner: str, did: str) -> None:
    """Record the DID of the account created for ``owner`` in ``users.atproto``."""
    database().users.update_one({"_id": owner}, {"$set": {"atproto.did": did}})


def duplicate_codes(*, codes: Iterable[str] | None = None, kind: RecordKind) -> dict[str, str]:
    """Values of ``kind``'s unique field (the painting's ``code``) used by
    more than one document, each mapped to the ref of the document that
    keeps it (the oldest ``_id``). ``codes`` limits the look-up to those
    values (served by the field's index). Empty for a kind with no unique
    field."""
    if kind.unique_field is None:
        return {}
    match = {"$type": "string"} if codes is None else {"$in": sorted(set(codes))}
    pipeline = [
        {"$match": {kind.unique_field: match}},
        {"$group": {"_id": f"${kind.unique_field}", "count": {"$sum": 1}, "first": {"$min": "$_id"}}},
        {"$match": {"count": {"$gt": 1}}},
    ]
    return {group["_id"]: str(group["first"]) for group in kind_collection(kind).aggregate(pipeline)}


@dataclass(frozen=True)
class WriteBack:
    """What a document learns of its record: the kind's ``key_fields`` of it
    are written back."""

    ref: str
    rkey: str
    uri: str
    cid: str = ""

    @property
    def did(self) -> str:
        """The account the record is in (``at://<did>/...``)."""
        return self.uri.removeprefix("at://").split("/", 1)[0]


def rkeys_write_back(write_backs: Iterable[WriteBack], *, kind: RecordKind) -> set[str]:
    """Write each record's key back where ``kind`` keeps it (the painting:
    ``atproto.rkey`` and ``atproto.uri``), in one bulk write. Returns the
    refs no document matched (deleted meanwhile), which is empty when every
    write-back landed. Raises PyMongoError."""
    items = list(write_backs)
    operations = [
        UpdateOne({"_id": object_id(item.ref)}, {"$set": {f"{kind.key_document}.{name}": getattr(item, name) for name in kind.key_fields}})
        for item in items
    ]
    if not operations:
        return set()
    matched = kind_collection(kind).bulk_write(operations, ordered=False).matched_count
    if matched == len(items):
        return set()
    ids = [object_id(item.ref) for item in items]
    present = {str(document["_id"]) for document in kind_collection(kind).find({"_id": {"$in": ids}}, {"_id": 1})}
    return {item.ref for item in items} - present


def rkeys_clear(refs: Iterable[str], *, kind: RecordKind) -> int:
    """Remove the written-back key (the painting's ``atproto``) from the
    documents whose record was deleted."""
    ids = [object_id(ref) for ref in refs]
    if not ids:
        return 0
    return kind_collection(kind).update_many({"_id": {"$in": ids}}, {"$unset": {kind.key_document: ""}}).matched_count


def painting_fields_set(ref: str, fields: dict) -> bool:
    """Set top-level fields of one painting, as aesthetic.computer's own code
    would (the demo's edits). Returns whether a painting matched."""
    return database().paintings.update_one({"_id": object_id(ref)}, {"$set": fields}).matched_count == 1


def painting_delete(ref: str) -> dict | None:
    """Delete one painting, as aesthetic.computer's own code would (the
    demo's edits); returns the document deleted, or None."""
    return database().paintings.find_one_and_delete({"_id": object_id(ref)})


def painting_restore(document: dict) -> None:
    """Put a deleted painting's document back, as a restore from a backup
    would (the demo's edits)."""
    database().paintings.insert_one(document)


def handle_rename(owner: str, handle: str) -> str | None:
    """Give ``owner`` a new aesthetic.computer handle (the demo's edits);
    returns the old one, or None when the owner has none."""
    document = database()["@handles"].find_one_and_update({"_id": owner}, {"$set": {"handle": handle}})
    return document.get("handle") if document else None


def corpus_replace(*, users: list[dict], handles: list[dict], paintings: Iterable[dict], batch_size: int = BATCH_SIZE) -> None:
    """Replace the ``users``, ``@handles`` and ``paintings`` collections with
    a sample corpus (``make_sample_data``), with production's lookup indexes.

    ``code`` gets a plain index, not production's unique one: the sample
    carries a duplicate code on purpose, as legacy data does.
    """
    db = database()
    for name in ("users", "@handles", "paintings"):
        db.drop_collection(name)
    if users:
        db.users.insert_many(users, ordered=False)
    if handles:
        db["@handles"].insert_many(handles, ordered=False)
        db["@handles"].create_index("handle", unique=True)
    batch: list[dict] = []
    for painting in paintings:
        batch.append(painting)
        if len(batch) >= batch_size:
            db.paintings.insert_many(batch, ordered=False)
            batch = []
    if batch:
        db.paintings.insert_many(batch, ordered=False)
    db.paintings.create_index("code")
    db.paintings.create_index("user")


def collection_replace(name: str, documents: Iterable[dict], *, indexes: tuple[str, ...] = (), batch_size: int = BATCH_SIZE) -> int:
    """Drop the collection ``name`` and fill it with ``documents``
    (``make_sample_data``'s other kinds), ``batch_size`` at a time, with a
    plain index on each of ``indexes`` (production's lookups; none unique,
    since sample data carries legacy duplicates and gaps on purpose).
    Returns how many documents were written. Raises PyMongoError."""
    db = database()
    db.drop_collection(name)
    collection = db.create_collection(name)  # there even when empty, as production's is
    written = 0
    batch: list[dict] = []
    for document in documents:
        batch.append(document)
        if len(batch) >= batch_size:
            collection.insert_many(batch, ordered=False)
            written, batch = written + len(batch), []
    if batch:
        collection.insert_many(batch, ordered=False)
        written += len(batch)
    for field_name in indexes:
        collection.create_index(field_name)
    return written
