"""The records a comparison has listed (a temporary SQLite index on disk, so
memory stays flat) and the scope it covers."""

import json
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.db.models import Q

from migrator import pds, source
from migrator.kinds import RecordKind
from migrator.models import Account, Transfer, Status

from .report import CompareError


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
        """(ref, did, rkey) of records whose ref no compared document has, in batches."""
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
    _passwords: dict = field(default_factory=dict, repr=False)  # never shown

    def repo(self, did: str) -> pds.Repo:
        """The account's repo through repo_for, which keeps PDS_OPEN_SESSIONS
        of them open whatever the number of accounts compared (sessions
        reused; a login only with the password MongoDB has, read once)."""
        if did not in self._passwords:
            owner = self.accounts.get(did, "")
            credentials = source.credentials_for([owner]).get(owner) if owner else None
            self._passwords[did] = credentials.password if credentials else ""
        return pds.repo_for(did=did, password=self._passwords[did])


def compare_scope(*, handle: str | None = None, anonymous: bool = False, kind: RecordKind) -> Scope:
    """The accounts and documents a comparison covers. Raises CompareError."""
    anonymous_did = Account.objects.filter(is_anonymous=True).values_list("did", flat=True).first() or ""
    if handle:
        owner = source.owner_for_handle(handle)
        if owner is None:
            raise CompareError(f"No aesthetic.computer user has the handle {handle}.")
        credentials = source.credentials_for([owner]).get(owner)
        did = (credentials.did if credentials else "") or (
            Transfer.objects.filter(owner=owner).exclude(account_did="").values_list("account_did", flat=True).first()
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
        Transfer.objects.filter(Q(status=Status.MIGRATED) | ~Q(rkey=""), kind=kind.name)
        .exclude(account_did="")
        .values_list("account_did", "owner")
        .order_by()  # Meta.ordering would defeat DISTINCT
        .distinct()
    )
    accounts = {did: owner for did, owner in rows}
    if anonymous_did:
        accounts[anonymous_did] = ""
    return Scope(filters={}, accounts=accounts, anonymous_did=anonymous_did, narrowed=False)
