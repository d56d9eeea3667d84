"""compare_paintings and transfers_verify, against the real local PDS and a
real MongoDB wire-protocol server.

Each test builds a small finished migration without the engine (paintings
and users in MongoDB, accounts on the PDS, one record per painting at its
TID with an uploaded thumbnail, rkeys written back, rows marked migrated),
then plants one kind of difference.
"""

import datetime as dt
import io
import json
from dataclasses import dataclass, field

import pytest
from bson import ObjectId
from django.core.management import CommandError, call_command

from migrator import pds, source
from migrator.models import Account, TransferEvent, Transfer, Status
from migrator.records import painting_record, source_fields
from migrator.services.compare import ACTOR, DifferenceKind, documents_compare, transfers_verify
from migrator.services.seed import documents_seed
from migrator.services.state import transfer_transition
from migrator.tid import tid_for_painting
from migrator.kinds import PAINTING
from tests.plugins.pds import create_test_account

pytestmark = pytest.mark.pds
COLLECTION = "computer.aesthetic.painting"
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


@dataclass
class World:
    mongo: object
    passwords: dict = field(default_factory=dict)  # did -> password
    users: dict = field(default_factory=dict)  # aesthetic.computer handle -> (sub, TestAccount)
    anonymous_did: str = ""
    refs: dict = field(default_factory=dict)  # name -> ref

    def repo(self, did: str) -> pds.Repo:
        return pds.repo_for(did=did, password=self.passwords[did])

    def row(self, name: str) -> Transfer:
        return Transfer.objects.get(ref=self.refs[name])

    def document(self, name: str) -> dict:
        return self.mongo.paintings.find_one({"_id": ObjectId(self.refs[name])})

    def record(self, name: str) -> pds.StoredRecord | None:
        row = self.row(name)
        rkey = tid_for_painting(when=row.when, ref=row.ref)
        return self.repo(row.account_did).record_get(collection=COLLECTION, rkey=rkey)

    def records(self, did: str) -> list[pds.StoredRecord]:
        found, cursor = [], None
        while True:
            page, cursor = self.repo(did).records_list(collection=COLLECTION, cursor=cursor)
            found += page
            if not cursor:
                return found


def when(n: int) -> dt.datetime:
    return dt.datetime(2023, 8, 24, 16, 21, 9, tzinfo=dt.UTC) + dt.timedelta(minutes=n)


def slug(n: int) -> str:
    return f"2023.8.24.16.{n // 60}.{n % 60}.000"


@pytest.fixture
def world(mongo_db, pds, settings) -> World:
    # Fewer open sessions than the world's three accounts: every comparison
    # and repair below uses repositories whose clients the cache closed.
    settings.PDS_OPEN_SESSIONS = 1
    world = World(mongo=mongo_db)
    anonymous = create_test_account("anon")
    Account.objects.create(did=anonymous.did, handle=anonymous.handle, password=anonymous.password, is_anonymous=True)
    world.anonymous_did = anonymous.did
    world.passwords[anonymous.did] = anonymous.password
    for handle in ("jeffrey", "amelia"):
        account = create_test_account(handle)
        sub = f"auth0|{handle}"
        world.users[handle] = (sub, account)
        world.passwords[account.did] = account.password
        mongo_db.users.insert_one({"_id": sub, "atproto": {"did": account.did, "handle": account.handle, "password": account.password}})
        mongo_db["@handles"].insert_one({"_id": sub, "handle": handle})
    paintings = {
        "jeffrey-1": {"user": "auth0|jeffrey"},
        "jeffrey-2": {"user": "auth0|jeffrey", "nuked": True},
        "jeffrey-3": {"user": "auth0|jeffrey"},
        "amelia-1": {"user": "auth0|amelia"},
        "amelia-2": {"user": "auth0|amelia"},
        "guest-1": {},
        "guest-2": {"slug": f"{slug(7)}:{slug(8)}"},  # with a recording
        "guest-3": {},
    }
    for n, (name, extra) in enumerate(paintings.items()):
        document = {"_id": ObjectId(), "code": f"c{n}x", "slug": slug(n), "when": when(n), "bucket": "art", **extra}
        mongo_db.paintings.insert_one(document)
        world.refs[name] = str(document["_id"])
    documents_seed(actor="test", kind=PAINTING)
    migrate(world)
    return world


def migrate(world: World) -> None:
    """What the engine does, by hand: a record per pending painting at its
    TID, rkeys written back to MongoDB, rows marked migrated."""
    for row in Transfer.objects.filter(status=Status.PENDING):
        document = source_fields(source.database().paintings.find_one({"_id": ObjectId(row.ref)}))
        repo = world.repo(row.account_did)
        blob = repo.blob_upload(PNG, mime_type="image/png")
        record = painting_record(
            ref=row.ref, slug=row.content["slug"], code=row.content["code"], when=row.when, owner_handle=row.owner_handle or None,
            nuked=document.nuked, has_recording=row.has_recording, thumbnail=blob,
        )  # fmt: skip
        rkey = tid_for_painting(when=row.when, ref=row.ref)
        (written,) = repo.apply_writes([pds.Write("create", COLLECTION, rkey, record)])
        source.rkeys_write_back([source.WriteBack(ref=row.ref, rkey=rkey, uri=written.uri)], kind=PAINTING)
        transfer_transition(
            row, to=Status.MIGRATED, actor="test", rkey=rkey, record_uri=written.uri, record_cid=written.cid,
            migrated_at=dt.datetime.now(dt.UTC), blob_cid=blob.ref.link, blob_mime="image/png", blob_size=len(PNG),
        )  # fmt: skip


def compare(*args) -> tuple[str, int]:
    out = io.StringIO()
    try:
        call_command("compare_paintings", *args, stdout=out)
    except CommandError as error:
        return out.getvalue(), error.returncode
    return out.getvalue(), 0


def compare_json(*args) -> tuple[dict, int]:
    output, status = compare("--json", *args)
    return json.loads(output), status


def kinds(report) -> dict[str, int]:
    return {str(kind): count for kind, count in report.counts.items() if count}


def test_a_finished_migration_compares_clean(world):
    report = documents_compare(kind=PAINTING)

    assert report.clean
    assert report.documents == 8 and report.records == 8
    assert len(report.accounts) == 3
    output, status = compare()
    assert status == 0 and "No differences." in output


def test_a_deleted_record_is_missing_and_repair_writes_it_back_under_its_key_with_the_blob_the_pds_still_holds(world, uploads):
    row = world.row("jeffrey-1")
    before = world.record("jeffrey-1")
    world.repo(row.account_did).record_delete(collection=COLLECTION, rkey=row.rkey)

    result, status = compare_json()
    assert status == 1
    assert result["counts"] == {"missing_record": 1}
    missing = result["examples"]["missing_record"][0]
    assert (missing["ref"], missing["did"], missing["rkey"]) == (row.ref, row.account_did, row.rkey)
    assert f"record at {row.rkey}" in missing["detail"] and missing["repair"] == f"write the record back under {row.rkey}"

    result, status = compare_json("--repair")
    assert status == 0 and result["repaired"] == {"missing_record": 1}
    row.refresh_from_db()
    after = world.record("jeffrey-1")
    # The same record under the same key: its thumbnail is one the account's
    # other records keep, so nothing was fetched or uploaded.
    assert (after.uri, after.cid, after.value) == (before.uri, before.cid, before.value)
    assert uploads == []
    assert (row.status, row.rkey, row.record_cid) == (Status.MIGRATED, before.rkey, before.cid)
    assert world.document("jeffrey-1")["atproto"]["rkey"] == before.rkey
    # The repair held the painting as a worker would, so no worker could take it meanwhile.
    steps = [(was, now) for was, now in row.events.order_by("id").values_list("from_status", "to_status") if was != now][-4:]
    assert steps == [("migrated", "running"), ("running", "pending"), ("pending", "running"), ("running", "migrated")]
    assert set(row.events.order_by("-id")[:4].values_list("actor", flat=True)) == {ACTOR}
    assert "the PDS still held" in row.events.order_by("-id").first().message
    assert documents_compare(kind=PAINTING).clean


def test_a_missing_record_that_cannot_be_written_again_says_why(world):
    """The account's every record is gone, and its thumbnail with them: the
    image must be fetched again, and this world serves none."""
    (sub, account) = world.users["amelia"]
    for record in world.records(account.did):
        world.repo(account.did).record_delete(collection=COLLECTION, rkey=record.rkey)

    result, status = compare_json("--repair")

    assert status == 1 and result["counts"] == {"missing_record": 2}
    assert result["repair_failures"] == {"missing_record": 2}
    assert all("Migrating it again ended failed" in example["repair_error"] for example in result["examples"]["missing_record"])
    row = world.row("amelia-1")
    assert row.status == Status.FAILED and row.last_error and row.rkey  # retryable, under the same key
    assert world.document("amelia-1")["atproto"]["rkey"] == row.rkey


def test_a_record_whose_painting_is_gone_is_reported_and_never_deleted(world):
    ghost = str(ObjectId())
    repo = world.repo(world.anonymous_did)
    record = painting_record(ref=ghost, slug=slug(50), code="zzz", when=when(50), owner_handle=None, nuked=False,
                             has_recording=False, thumbnail=repo.blob_upload(PNG, mime_type="image/png"))  # fmt: skip
    rkey = tid_for_painting(when=when(50), ref=ghost)
    repo.record_create(collection=COLLECTION, rkey=rkey, record=record)

    result, status = compare_json("--repair")

    assert status == 1 and result["counts"] == {"orphan_record": 1}
    orphan = result["examples"]["orphan_record"][0]
    assert (orphan["ref"], orphan["did"], orphan["rkey"], orphan["repair"]) == (ghost, world.anonymous_did, rkey, "")
    assert repo.record_get(collection=COLLECTION, rkey=rkey) is not None
    assert kinds(documents_compare(kind=PAINTING)) == {"orphan_record": 1}


def test_a_second_record_for_one_ref_is_a_duplicate_and_repair_keeps_the_one_at_the_paintings_tid(world):
    row = world.row("amelia-1")
    repo = world.repo(row.account_did)
    original = world.record("amelia-1")
    later = tid_for_painting(when=when(99), ref=row.ref)  # what a clock-based retry would have written
    repo.record_create(collection=COLLECTION, rkey=later, record=original.value)

    report = documents_compare(kind=PAINTING)
    assert kinds(report) == {"duplicate_record": 1}
    assert report.examples[DifferenceKind.DUPLICATE_RECORD][0].rkey == later

    documents_compare(repair=True, kind=PAINTING)

    assert [record.rkey for record in world.records(row.account_did) if record.value["ref"] == row.ref] == [row.rkey]
    assert row.events.filter(actor=ACTOR, message__contains=f"deleted the duplicate record at://{row.account_did}/{COLLECTION}/{later}").exists()
    assert documents_compare(kind=PAINTING).clean


def test_duplicates_with_no_record_at_the_tid_keep_the_oldest(world):
    row = world.row("guest-1")
    repo = world.repo(row.account_did)
    value = world.record("guest-1").value
    repo.record_delete(collection=COLLECTION, rkey=row.rkey)
    older, newer = (tid_for_painting(when=when(n), ref=row.ref) for n in (90, 91))
    for rkey in (newer, older):
        repo.record_create(collection=COLLECTION, rkey=rkey, record=value)

    report = documents_compare(repair=True, kind=PAINTING)

    assert report.counts[DifferenceKind.DUPLICATE_RECORD] == 1 and report.examples[DifferenceKind.DUPLICATE_RECORD][0].rkey == newer
    assert report.counts[DifferenceKind.RKEY_MISMATCH] == 1 and report.counts[DifferenceKind.STATE_MISMATCH] == 1
    assert world.document("guest-1")["atproto"]["rkey"] == older
    assert world.row("guest-1").rkey == older
    assert documents_compare(kind=PAINTING).clean


def test_a_record_field_that_differs_from_mongodb_is_a_mismatch_and_repair_rewrites_it_keeping_the_thumbnail(world):
    row = world.row("guest-2")
    repo = world.repo(row.account_did)
    stored = world.record("guest-2")
    tampered = {**stored.value, "code": "zzz", "nuked": True}
    del tampered["recordingUrl"]
    repo.record_put(collection=COLLECTION, rkey=row.rkey, record=tampered)

    report = documents_compare(kind=PAINTING)
    (difference,) = report.examples[DifferenceKind.FIELD_MISMATCH]
    assert kinds(report) == {"field_mismatch": 1, "state_mismatch": 1}  # the cid changed too
    assert "code: record 'zzz', MongoDB 'c6x'" in difference.detail
    assert "nuked: record True, MongoDB False" in difference.detail
    assert "recordingUrl: record None, MongoDB 'http://" in difference.detail

    documents_compare(repair=True, kind=PAINTING)

    rewritten = world.record("guest-2")
    assert rewritten.value["code"] == "c6x" and rewritten.value["nuked"] is False
    assert rewritten.value["recordingUrl"].endswith(f"{slug(8)}.zip")
    assert rewritten.value["thumbnail"] == stored.value["thumbnail"]
    assert world.row("guest-2").record_cid == rewritten.cid
    assert documents_compare(kind=PAINTING).clean


def test_a_recording_the_record_has_and_the_row_does_not_know_is_kept_and_learned(world):
    """A rebuilt state table does not know what the engine found on storage
    (a user's recording): compare does not count the record's recordingUrl
    as a difference, and a repair of another field keeps it."""
    row = world.row("jeffrey-1")
    repo = world.repo(row.account_did)
    stored = world.record("jeffrey-1")
    from migrator.images import painting_recording_url

    recording = painting_recording_url(handle="jeffrey", slug=row.content["slug"])
    repo.record_put(collection=COLLECTION, rkey=row.rkey, record={**stored.value, "recordingUrl": recording})
    Transfer.objects.filter(pk=row.pk).update(record_cid="")
    assert documents_compare(kind=PAINTING).clean

    world.mongo.paintings.update_one({"_id": ObjectId(row.ref)}, {"$set": {"code": "new1"}})
    report = documents_compare(repair=True, kind=PAINTING)

    assert kinds(report) == {"field_mismatch": 1} and report.repaired[DifferenceKind.FIELD_MISMATCH] == 1
    rewritten = world.record("jeffrey-1")
    assert rewritten.value["code"] == "new1" and rewritten.value["recordingUrl"] == recording
    assert world.row("jeffrey-1").has_recording
    assert documents_compare(kind=PAINTING).clean


def test_a_nuked_painting_is_migrated_with_the_flag_and_un_nuking_it_is_a_mismatch(world):
    assert world.record("jeffrey-2").value["nuked"] is True
    world.mongo.paintings.update_one({"_id": ObjectId(world.refs["jeffrey-2"])}, {"$unset": {"nuked": ""}})

    report = documents_compare(kind=PAINTING)
    assert "nuked: record True, MongoDB False" in report.examples[DifferenceKind.FIELD_MISMATCH][0].detail


def test_an_rkey_in_mongodb_that_differs_from_the_record_is_written_back(world):
    world.mongo.paintings.update_one({"_id": ObjectId(world.refs["amelia-2"])}, {"$set": {"atproto.rkey": "3zzzzzzzzzzzz"}})
    world.mongo.paintings.update_one({"_id": ObjectId(world.refs["guest-3"])}, {"$unset": {"atproto.uri": ""}})

    result, status = compare_json("--repair")

    assert status == 0 and result["repaired"] == {"rkey_mismatch": 2}
    row = world.row("amelia-2")
    assert world.document("amelia-2")["atproto"] == {"rkey": row.rkey, "uri": row.record_uri}
    assert world.document("guest-3")["atproto"]["uri"] == world.row("guest-3").record_uri
    assert row.events.filter(actor=ACTOR, message__contains="wrote atproto.rkey").exists()
    assert documents_compare(kind=PAINTING).clean


def test_a_state_row_that_disagrees_with_the_record_is_corrected(world):
    Transfer.objects.filter(ref=world.refs["jeffrey-3"]).update(rkey="3zzzzzzzzzzzz", record_uri="")
    pending = world.row("amelia-1")
    transfer_transition(pending, to=Status.PENDING, actor="test", rkey="", record_uri="")  # a crash before the state write

    report = documents_compare(repair=True, kind=PAINTING)

    assert report.counts == {DifferenceKind.STATE_MISMATCH: 2} and report.repaired == {DifferenceKind.STATE_MISMATCH: 2}
    corrected = world.row("jeffrey-3")
    assert corrected.rkey == tid_for_painting(when=corrected.when, ref=corrected.ref)
    assert corrected.record_uri.endswith(corrected.rkey)
    pending.refresh_from_db()
    assert pending.status == Status.MIGRATED and pending.record_uri.endswith(pending.rkey)
    assert pending.events.first().actor == ACTOR
    assert documents_compare(kind=PAINTING).clean


def test_a_skipped_painting_with_a_record_is_reported_only(world):
    row = world.row("amelia-2")
    transfer_transition(row, to=Status.SKIPPED, actor="test", skip_reason="manual")

    report = documents_compare(repair=True, kind=PAINTING)

    (difference,) = report.examples[DifferenceKind.STATE_MISMATCH]
    assert "skipped (Skipped by staff)" in difference.detail and not difference.repaired
    assert world.row("amelia-2").status == Status.SKIPPED


def test_a_migrated_row_whose_painting_left_mongodb_is_reported(world):
    world.mongo.paintings.delete_one({"_id": ObjectId(world.refs["guest-1"])})

    report = documents_compare(repair=True, kind=PAINTING)

    assert kinds(report) == {"orphan_record": 1, "state_mismatch": 1}
    assert report.examples[DifferenceKind.STATE_MISMATCH][0].detail.startswith("The state says migrated, but MongoDB has no such painting. The next full seed")
    assert world.row("guest-1").status == Status.MIGRATED


def test_dry_run_shows_the_repairs_and_changes_nothing(world):
    row = world.row("jeffrey-1")
    world.repo(row.account_did).record_delete(collection=COLLECTION, rkey=row.rkey)
    world.mongo.paintings.update_one({"_id": ObjectId(world.refs["amelia-2"])}, {"$set": {"atproto.rkey": "3zzzzzzzzzzzz"}})
    events = TransferEvent.objects.count()
    documents = list(world.mongo.paintings.find())

    output, status = compare("--repair", "--dry-run")

    assert status == 1
    assert "would repair" in output
    assert f"repair: would write the record back under {row.rkey}" in output
    assert "repair: would write rkey" in output
    assert TransferEvent.objects.count() == events
    assert list(world.mongo.paintings.find()) == documents
    assert world.row("jeffrey-1").status == Status.MIGRATED
    assert kinds(documents_compare(kind=PAINTING)) == {"missing_record": 1, "rkey_mismatch": 1}


def test_repair_does_what_the_dry_run_showed_and_then_compares_clean(world):
    world.mongo.paintings.update_one({"_id": ObjectId(world.refs["amelia-2"])}, {"$set": {"atproto.rkey": "3zzzzzzzzzzzz", "code": "q"}})
    row = world.row("guest-1")
    world.repo(row.account_did).record_delete(collection=COLLECTION, rkey=row.rkey)

    planned, status = compare_json("--repair", "--dry-run")
    assert status == 1
    done, status = compare_json("--repair")

    assert status == 0
    assert planned["counts"] == planned["repairable"] == done["counts"] == done["repaired"]
    assert planned["counts"] == {"missing_record": 1, "field_mismatch": 1, "rkey_mismatch": 1}
    assert compare()[1] == 0


def test_the_table_names_each_kind_with_its_count_and_examples(world):
    for name in ("guest-1", "guest-3"):
        row = world.row(name)
        world.repo(row.account_did).record_delete(collection=COLLECTION, rkey=row.rkey)

    output, status = compare("--examples", "1")

    assert status == 1
    assert "Compared 8 MongoDB paintings with 6 records in 3 accounts." in output
    assert "Paintings without a record" in output and "Total" in output
    assert "Paintings without a record (2, first 1):" in output


def test_user_narrows_to_one_account_and_its_paintings(world):
    row = world.row("amelia-1")
    world.repo(row.account_did).record_delete(collection=COLLECTION, rkey=row.rkey)

    result, status = compare_json("--user", "@jeffrey")
    assert status == 0 and result["documents"] == 3 and result["accounts"] == [world.users["jeffrey"][1].did]

    result, status = compare_json("--user", "@amelia")
    assert status == 1 and result["counts"] == {"missing_record": 1}

    result, status = compare_json("--anonymous")
    assert status == 0 and result["documents"] == 3 and result["accounts"] == [world.anonymous_did]


def test_an_unknown_handle_is_an_error(world):
    output, status = compare("--user", "@nobody")
    assert status == 2


def test_a_record_in_another_users_repo_is_in_the_wrong_account(world):
    jeffrey = world.users["jeffrey"][1].did
    stored = world.record("amelia-1")
    world.repo(jeffrey).record_create(collection=COLLECTION, rkey=stored.uri.rsplit("/", 1)[1], record=stored.value)

    assert kinds(documents_compare(kind=PAINTING)) == {"duplicate_record": 1}
    narrowed = documents_compare(handle="@jeffrey", kind=PAINTING)
    assert kinds(narrowed) == {"wrong_account": 1}

    documents_compare(repair=True, kind=PAINTING)
    assert documents_compare(kind=PAINTING).clean
    assert world.record("amelia-1") is not None


def test_listing_pages_through_more_than_100_records(world):
    repo = world.repo(world.anonymous_did)
    blob = repo.blob_upload(PNG, mime_type="image/png")
    writes = []
    for n in range(100, 230):
        document = {"_id": ObjectId(), "code": f"p{n}", "slug": slug(n), "when": when(n)}
        world.mongo.paintings.insert_one(document)
        record = painting_record(ref=str(document["_id"]), slug=slug(n), code=f"p{n}", when=when(n), owner_handle=None,
                                 nuked=False, has_recording=False, thumbnail=blob)  # fmt: skip
        writes.append(pds.Write("create", COLLECTION, tid_for_painting(when=when(n), ref=str(document["_id"])), record))
    repo.apply_writes(writes)

    report = documents_compare(batch_size=50, kind=PAINTING)

    assert report.records == 138 and report.documents == 138
    assert kinds(report) == {"state_mismatch": 130}  # records for paintings never seeded
    assert report.examples[DifferenceKind.STATE_MISMATCH][0].detail.startswith("Not in the state table")


def test_verify_notes_each_painting_and_names_what_differs(world):
    row = world.row("jeffrey-1")
    world.repo(row.account_did).record_delete(collection=COLLECTION, rkey=row.rkey)
    world.mongo.paintings.update_one({"_id": ObjectId(world.refs["amelia-1"])}, {"$set": {"code": "new"}})

    report = transfers_verify(Transfer.objects.all(), actor="admin:alice")

    assert (report.checked, report.matching) == (8, 6)
    assert any("no record at" in line and row.rkey in line for line in report.differences)
    assert any("code: record 'c3x', MongoDB 'new'" in line for line in report.differences)
    assert TransferEvent.objects.filter(actor="admin:alice", message__startswith="Verified against the PDS").count() == 8
    assert world.row("amelia-2").events.first().message.startswith("Verified against the PDS: the record at://")


def test_verify_of_a_pending_painting_expects_no_record(world):
    row = world.row("guest-3")
    world.repo(row.account_did).record_delete(collection=COLLECTION, rkey=row.rkey)
    source.rkeys_clear([row.ref], kind=PAINTING)
    transfer_transition(row, to=Status.PENDING, actor="test", rkey="")

    report = transfers_verify(Transfer.objects.filter(pk=row.pk), actor="admin:alice")

    assert (report.checked, report.matching, report.differences) == (1, 1, [])
    assert "no record, as expected for a pending painting" in row.events.first().message


def test_compare_logs_in_at_most_once_per_account(world):
    pds.forget_sessions()
    before = sum(pds.LOGINS.values())
    documents_compare(kind=PAINTING)
    documents_compare(kind=PAINTING)
    assert sum(pds.LOGINS.values()) - before <= 3
