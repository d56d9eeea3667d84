"""Seeding the state table from a real MongoDB wire-protocol server."""

import datetime as dt
import io

import pytest
from bson import ObjectId
from django.core.management import call_command

from migrator.models import TransferEvent, Transfer, SkipReason, Status
from migrator.services.state import transfer_transition

pytestmark = pytest.mark.django_db


def run(command, *args, **options) -> str:
    out = io.StringIO()
    call_command(command, *args, stdout=out, **options)
    return out.getvalue()


@pytest.fixture
def corpus(mongo_db):
    """The plan's 3,903 paintings, their users and handles (seed_paintings
    reads nothing else)."""
    run("make_sample_data", scale=1.0, seed=7, no_images=True, paintings_only=True)
    return mongo_db


@pytest.mark.slow
def test_the_sample_corpus_seeds_to_the_plans_counts(corpus):
    output = run("seed_paintings")

    assert "new:        3903" in output
    assert "anonymous:  1064" in output
    assert "2839 paintings by 984 users (978 with ATProto accounts, 6 without)" in output
    assert "@ac25namuc (384)" in output
    assert Transfer.objects.count() == 3903
    assert Transfer.objects.filter(owner="").count() == 1064


@pytest.mark.slow
def test_every_seeded_row_has_its_first_event(corpus):
    run("seed_paintings")
    assert TransferEvent.objects.filter(from_status="").count() == 3903
    assert not Transfer.objects.filter(events__isnull=True).exists()


@pytest.mark.slow
def test_reseeding_reports_only_what_changed(corpus):
    run("seed_paintings")
    template = corpus.paintings.find_one({"user": {"$exists": False}, "slug": {"$regex": r"^\d"}})
    corpus.paintings.insert_many(
        [
            {"_id": ObjectId(), "code": f"new{number}", "slug": f"2025.10.2.10.0.{number:02d}.000", "when": dt.datetime(2025, 10, 2, tzinfo=dt.UTC), "bucket": template["bucket"]}
            for number in range(10)
        ]
    )
    edited = [document["_id"] for document in corpus.paintings.find({"nuked": {"$exists": False}, "slug": {"$regex": r"^\d"}}).limit(3)]
    corpus.paintings.update_many({"_id": {"$in": edited}}, {"$set": {"nuked": True}})

    output = run("seed_paintings")

    assert "new:        10\n" in output
    assert "updated:    3\n" in output
    assert "unchanged:  3900\n" in output
    assert Transfer.objects.filter(ref__in=[str(ref) for ref in edited], nuked=True).count() == 3
    for ref in edited:
        assert TransferEvent.objects.filter(transfer__ref=str(ref), message__contains="nuked False → True").exists()


@pytest.mark.slow
def test_reseeding_twice_changes_nothing(corpus):
    run("seed_paintings")
    events = TransferEvent.objects.count()
    output = run("seed_paintings")
    assert "new:        0" in output and "updated:    0" in output and "unchanged:  3903" in output
    assert TransferEvent.objects.count() == events


def painting(**fields):
    document = {"_id": ObjectId(), "code": "a3b", "slug": "2023.8.24.16.21.09.123", "when": dt.datetime(2023, 8, 24, 16, 21, 9, tzinfo=dt.UTC)}
    document.update(fields)
    return document


@pytest.mark.parametrize(
    ("change", "reason", "words"),
    [
        ({"slug": None}, SkipReason.MISSING_SLUG, "no slug"),
        ({"when": "2023-08-24"}, SkipReason.BAD_WHEN, "not a date (str '2023-08-24')"),
        ({"code": "x" * 11}, SkipReason.TOO_LONG, "code is 11 characters; the lexicon allows 10"),
        ({"slug": "2023." + "1" * 70}, SkipReason.TOO_LONG, "slug is 75 characters; the lexicon allows 64"),
        ({"slug": "../../etc/passwd"}, SkipReason.BAD_SLUG, "cannot be part of an image URL"),
        ({"code": None}, SkipReason.BAD_CODE, "no code"),
    ],
)
def test_malformed_documents_are_skipped_with_a_readable_reason(mongo_db, change, reason, words):
    document = painting(**{key: value for key, value in change.items() if value is not None})
    for key in [key for key, value in change.items() if value is None]:
        document.pop(key)
    mongo_db.paintings.insert_one(document)

    output = run("seed_paintings")

    row = Transfer.objects.get(ref=str(document["_id"]))
    assert (row.status, row.skip_reason) == (Status.SKIPPED, reason)
    assert words in row.skip_detail
    assert row.events.get().message.endswith(row.skip_detail)
    assert "problems:   1" in output


def test_the_later_of_two_paintings_with_one_code_is_skipped(mongo_db):
    first, second = painting(code="dup"), painting(code="dup", slug="2023.8.24.16.21.10.000")
    mongo_db.paintings.insert_many([second, first])
    run("seed_paintings")
    keeper, duplicate = sorted(Transfer.objects.all(), key=lambda row: row.ref)
    assert keeper.status == Status.PENDING
    assert duplicate.skip_reason == SkipReason.DUPLICATE_CODE
    assert keeper.ref in duplicate.skip_detail


def test_users_without_an_account_or_handle_are_skipped(mongo_db):
    mongo_db.users.insert_many([{"_id": "auth0|blocked"}, {"_id": "auth0|nohandle", "atproto": {"handle": "x.test", "password": "p", "did": "did:plc:x"}}])
    mongo_db["@handles"].insert_one({"_id": "auth0|blocked", "handle": "blocked"})
    mongo_db.paintings.insert_many([painting(user="auth0|blocked"), painting(user="auth0|nohandle", code="b4c")])
    run("seed_paintings")
    assert Transfer.objects.get(owner="auth0|blocked").skip_reason == SkipReason.NO_ACCOUNT
    assert Transfer.objects.get(owner="auth0|nohandle").skip_reason == SkipReason.NO_HANDLE


def test_a_fixed_document_becomes_pending_again(mongo_db):
    document = painting(when="yesterday")
    mongo_db.paintings.insert_one(document)
    run("seed_paintings")
    mongo_db.paintings.update_one({"_id": document["_id"]}, {"$set": {"when": dt.datetime(2023, 1, 1, tzinfo=dt.UTC)}})

    output = run("seed_paintings")

    row = Transfer.objects.get()
    assert (row.status, row.skip_reason) == (Status.PENDING, "")
    assert "updated:    1" in output
    assert row.events.filter(from_status=Status.SKIPPED, to_status=Status.PENDING).exists()


def test_a_key_mongodb_has_is_where_the_engine_looks_first(mongo_db):
    """MongoDB names a record the state table never knew of (a rebuilt
    table): the row keeps the key, pending, for the engine to look it up
    and adopt it; its writer is not known."""
    document = painting(atproto={"rkey": "3k2yihcrp6f2c", "uri": "at://did:plc:abc/computer.aesthetic.painting/3k2yihcrp6f2c"})
    mongo_db.paintings.insert_one(document)
    run("seed_paintings")
    row = Transfer.objects.get()
    assert (row.status, row.rkey, row.record_uri) == (Status.PENDING, "3k2yihcrp6f2c", document["atproto"]["uri"])
    assert row.written_by.startswith("unknown run")
    assert "the engine looks the record up there" in row.events.get().message


def test_a_migrated_row_keeps_its_rkey_and_history(mongo_db):
    document = painting()
    mongo_db.paintings.insert_one(document)
    run("seed_paintings")
    row = Transfer.objects.get()
    uri = "at://did:plc:abc/computer.aesthetic.painting/3k2yihcrp6f2c"
    transfer_transition(row, to=Status.MIGRATED, actor="test", rkey="3k2yihcrp6f2c", record_uri=uri, record_cid="bafyrecord")
    mongo_db.paintings.update_one({"_id": document["_id"]}, {"$set": {"atproto": {"rkey": "3k2yihcrp6f2c", "uri": uri}}})

    mongo_db.paintings.update_one({"_id": document["_id"]}, {"$unset": {"atproto": ""}, "$set": {"nuked": True}})
    output = run("seed_paintings")

    row.refresh_from_db()
    assert row.rkey == "3k2yihcrp6f2c"
    assert row.nuked
    # The record is stale (nuked changed): it goes back to pending to be rewritten under its key.
    assert row.status == Status.PENDING
    assert list(row.events.values_list("to_status", flat=True)) == [Status.PENDING, Status.MIGRATED, Status.MIGRATED, Status.MIGRATED, Status.PENDING]
    # MongoDB lost the key (a restore from an older backup): written back from the state table.
    assert mongo_db.paintings.find_one({"_id": document["_id"]})["atproto"] == {"rkey": "3k2yihcrp6f2c", "uri": uri}
    assert "keys written back to MongoDB: 1" in output


def test_nuked_paintings_are_skipped_when_configured(mongo_db, settings):
    settings.NUKED_PAINTINGS = "skip"
    mongo_db.paintings.insert_many([painting(nuked=True), painting(nuked=False, code="zz9")])
    run("seed_paintings")
    assert Transfer.objects.get(nuked=True).skip_reason == SkipReason.NUKED
    assert Transfer.objects.get(nuked=False).status == Status.PENDING


HOSTILE = {
    "when before 1970": ({"when": dt.datetime(1969, 7, 20, tzinfo=dt.UTC)}, SkipReason.BAD_WHEN, "1969-07-20, outside the dates a record key can hold"),
    "when in year 3000": ({"when": dt.datetime(3000, 1, 1, tzinfo=dt.UTC)}, SkipReason.BAD_WHEN, "3000-01-01, outside the dates"),
    "_id a 24-hex string": ({"_id": "65a1b2c3d4e5f6a7b8c9d0e1"}, SkipReason.BAD_REF, "`_id` is str '65a1b2c3d4e5f6a7b8c9d0e1', not an ObjectId"),
    "_id a long string": ({"_id": "x" * 300}, SkipReason.BAD_REF, "not an ObjectId"),
    "_id a number": ({"_id": 12345}, SkipReason.BAD_REF, "`_id` is int 12345"),
    "user an ObjectId": ({"user": ObjectId("65a1b2c3d4e5f6a7b8c9d0e1")}, SkipReason.BAD_OWNER, "`user` is ObjectId ObjectId('65a1b2c3d4e5f6a7b8c9d0e1'), not a user id"),
    "user a number": ({"user": 7}, SkipReason.BAD_OWNER, "`user` is int 7, not a user id"),
    "user empty": ({"user": ""}, SkipReason.BAD_OWNER, "`user` is str '', not a user id"),
    "nuked yes": ({"nuked": "yes"}, SkipReason.BAD_NUKED, "`nuked` is str 'yes', not true or false"),
    "nuked 1": ({"nuked": 1}, SkipReason.BAD_NUKED, "`nuked` is int 1"),
    "nuked 'true'": ({"nuked": "true"}, SkipReason.BAD_NUKED, "`nuked` is str 'true'"),
    "slug unicode": ({"slug": "２０２３.８.２４"}, SkipReason.BAD_SLUG, "cannot be part of an image URL"),
    "slug huge": ({"slug": "1." * 500_000}, SkipReason.TOO_LONG, "slug is 1000000 characters"),
    "slug a number": ({"slug": 2023.8}, SkipReason.MISSING_SLUG, "no slug"),
    "code a list": ({"code": ["a3b"]}, SkipReason.BAD_CODE, "no code"),
    "code empty": ({"code": ""}, SkipReason.BAD_CODE, "no code"),
    "when null": ({"when": None}, SkipReason.BAD_WHEN, "not a date (missing)"),
}


@pytest.mark.parametrize(("change", "reason", "words"), HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_documents_are_skipped_with_a_reason_and_spare_their_neighbours(mongo_db, change, reason, words):
    hostile = painting(**change)
    neighbours = [painting(code="n1a"), painting(code="n2b", slug="2023.8.24.16.21.10.000")]
    mongo_db.paintings.insert_many([neighbours[0], hostile, neighbours[1]])

    run("seed_paintings")

    rows = {row.ref: row for row in Transfer.objects.all()}
    assert len(rows) == 3
    row = next(row for ref, row in rows.items() if ref not in {str(n["_id"]) for n in neighbours})
    assert (row.status, row.skip_reason) == (Status.SKIPPED, reason)
    assert words in row.skip_detail
    assert len(row.ref) <= 64
    for neighbour in neighbours:
        assert rows[str(neighbour["_id"])].status == Status.PENDING


def test_a_user_that_names_no_one_is_never_taken_for_a_guest(mongo_db):
    mongo_db.paintings.insert_many([painting(user=7), painting(user=None, code="g1a"), painting(code="g2b")])
    report = run("seed_paintings")
    assert "anonymous:  2" in report  # null and missing; the number is not a guest
    assert sorted(Transfer.objects.filter(owner="").values_list("status", flat=True)) == [Status.PENDING, Status.PENDING]
    bad = Transfer.objects.get(skip_reason=SkipReason.BAD_OWNER)
    assert bad.owner and not bad.is_anonymous and bad.account_did == ""


def test_a_handle_that_is_not_text_skips_only_its_owners_paintings(mongo_db):
    mongo_db.users.insert_many(
        [{"_id": f"auth0|{name}", "atproto": {"did": f"did:plc:{name}", "handle": f"{name}.test", "password": "p"}} for name in ("odd", "fine")]
    )
    mongo_db["@handles"].insert_many([{"_id": "auth0|odd", "handle": 1234}, {"_id": "auth0|fine", "handle": "fine"}])
    mongo_db.paintings.insert_many([painting(user="auth0|odd"), painting(user="auth0|fine", code="f1a")])
    run("seed_paintings")
    assert Transfer.objects.get(owner="auth0|odd").skip_reason == SkipReason.NO_HANDLE
    assert Transfer.objects.get(owner="auth0|fine").status == Status.PENDING


def test_an_unusable_password_is_a_readable_skip_that_never_shows_it(mongo_db):
    mongo_db.users.insert_one({"_id": "auth0|num", "atproto": {"did": "did:plc:num", "handle": "num.test", "password": 987654321}})
    mongo_db["@handles"].insert_one({"_id": "auth0|num", "handle": "num"})
    mongo_db.paintings.insert_one(painting(user="auth0|num"))
    run("seed_paintings")
    row = Transfer.objects.get()
    assert (row.status, row.skip_reason) == (Status.SKIPPED, SkipReason.NO_ACCOUNT)
    assert row.skip_detail == "users.atproto is unusable: password is int, not text."
    assert "987654321" not in "".join(row.events.values_list("message", flat=True))


def test_what_the_engine_learned_survives_a_reseed(mongo_db):
    """A recording found on storage and a DID learned at login are the
    engine's; MongoDB knows neither, and a re-seed must not forget them."""
    mongo_db.users.insert_one({"_id": "auth0|nodid", "atproto": {"handle": "nodid.test", "password": "p"}})
    mongo_db["@handles"].insert_one({"_id": "auth0|nodid", "handle": "nodid"})
    document = painting(user="auth0|nodid")
    mongo_db.paintings.insert_one(document)
    run("seed_paintings")
    row = Transfer.objects.get()
    Transfer.objects.update(content={**row.content, "recording": True}, account_did="did:plc:learned")  # what the engine wrote

    run("seed_paintings")
    row = Transfer.objects.get()
    assert (row.has_recording, row.account_did) == (True, "did:plc:learned")

    # A new slug is a new URL: the recording must be looked for again.
    mongo_db.paintings.update_one({"_id": document["_id"]}, {"$set": {"slug": "2023.8.24.16.21.09.999"}})
    run("seed_paintings")
    row.refresh_from_db()
    assert (row.has_recording, row.account_did) == (False, "did:plc:learned")


def test_a_lost_key_mongodb_refuses_to_take_back_leaves_that_one_document_as_it_is(mongo_db):
    """A document whose ``atproto`` became a string: MongoDB cannot set
    ``atproto.rkey`` in it. Its neighbour's key is written back all the same,
    the seed goes on, and the one that could not be says why."""
    good, bad = painting(code="g1"), painting(code="b1", slug="2023.8.24.16.21.10.123")
    mongo_db.paintings.insert_many([good, bad])
    run("seed_paintings")
    for n, document in enumerate((good, bad)):
        row = Transfer.objects.get(ref=str(document["_id"]))
        uri = f"at://did:plc:abc/computer.aesthetic.painting/3k2yihcrp6f2{n}"
        transfer_transition(row, to=Status.MIGRATED, actor="test", rkey=f"3k2yihcrp6f2{n}", record_uri=uri)
    mongo_db.paintings.update_one({"_id": bad["_id"]}, {"$set": {"atproto": "garbage"}})

    output = run("seed_paintings")

    assert mongo_db.paintings.find_one({"_id": good["_id"]})["atproto"]["rkey"] == "3k2yihcrp6f20"
    assert mongo_db.paintings.find_one({"_id": bad["_id"]})["atproto"] == "garbage"
    assert "keys written back to MongoDB: 1" in output
    note = Transfer.objects.get(ref=str(bad["_id"])).events.first().message
    assert "MongoDB refused" in note and "garbage" not in note


@pytest.mark.parametrize(
    "keys",
    [{"rkey": "x" * 33, "uri": "at://did:plc:abc/computer.aesthetic.painting/" + "x" * 33}, {"rkey": "../../etc", "uri": "y" * 600}, {"rkey": "3k2yihcrp6f2c", "uri": "at://" + "z" * 600}],
    ids=["key too long", "not a key, uri too long", "uri too long"],
)
def test_a_key_no_record_of_ours_can_have_reads_as_absent_and_the_neighbours_seed(mongo_db, keys):
    """A written-back key the state table cannot hold (a column of 32 and
    512 characters: PostgreSQL refuses more, and the whole batch with it)."""
    hostile, neighbour = painting(code="h1", atproto=keys), painting(code="n1", slug="2023.8.24.16.21.10.123")
    mongo_db.paintings.insert_many([hostile, neighbour])

    run("seed_paintings")

    row = Transfer.objects.get(ref=str(hostile["_id"]))
    assert row.status == Status.PENDING and len(row.rkey) <= 32 and len(row.record_uri) <= 512
    assert row.rkey in ("", "3k2yihcrp6f2c") and not row.record_uri
    assert Transfer.objects.get(ref=str(neighbour["_id"])).status == Status.PENDING


@pytest.mark.parametrize(("nuked_paintings", "words"), [("skip", "the engine removes the record"), ("flag", "adopts it")])
def test_a_nuked_painting_found_with_a_key_is_told_what_becomes_of_its_record(mongo_db, settings, nuked_paintings, words):
    settings.NUKED_PAINTINGS = nuked_paintings
    mongo_db.paintings.insert_one(painting(nuked=True, atproto={"rkey": "3k2yihcrp6f2c", "uri": "at://did:plc:abc/computer.aesthetic.painting/3k2yihcrp6f2c"}))

    run("seed_paintings")

    row = Transfer.objects.get()
    assert (row.status, row.rkey) == (Status.PENDING, "3k2yihcrp6f2c")
    assert words in row.events.get().message


@pytest.mark.parametrize("bystanders", [0, 20], ids=["few users", "more users than paintings"])
@pytest.mark.parametrize("kept", [1, 2, 3, 10_000])
def test_a_seed_looks_each_owner_up_once_and_keeps_no_more_owners_than_it_may(mongo_db, monkeypatch, kept, bystanders):
    """A full seed reads users and @handles once each, every user at once,
    while there are at most OWNERS_KEPT and no more users than documents;
    else it looks each batch's owners up, each once, forgetting them all
    past OWNERS_KEPT and looking them up again. Every painting gets its own
    owner's handle and DID."""
    from migrator import source
    from migrator.kinds import PAINTING
    from migrator.services import seed

    owners = [f"auth0|owner{n}" for n in range(3)]
    for n, owner in enumerate(owners):
        mongo_db.users.insert_one({"_id": owner, "atproto": {"did": f"did:plc:owner{n}", "handle": f"owner{n}.test", "password": "p"}})
        mongo_db["@handles"].insert_one({"_id": owner, "handle": f"owner{n}"})
    mongo_db.paintings.insert_many([painting(user=owners[n % 3], code=f"c{n}", slug=f"2023.8.24.16.21.{n:02d}.123") for n in range(9)])
    for n in range(bystanders):  # users with no painting
        mongo_db.users.insert_one({"_id": f"auth0|bystander{n}"})
    looked_up = []
    real = source.handles_for
    monkeypatch.setattr(source, "handles_for", lambda subs: looked_up.append(None if subs is None else sorted(subs)) or real(subs))
    monkeypatch.setattr(seed, "OWNERS_KEPT", kept)

    seed.documents_seed(actor="test", batch_size=2, kind=PAINTING)

    rows = Transfer.objects.order_by("when")
    assert [(row.owner_handle, row.account_did) for row in rows] == [(f"owner{int(row.owner[-1])}", f"did:plc:owner{row.owner[-1]}") for row in rows]
    assert {row.owner for row in rows} == set(owners) and all(row.status == Status.PENDING for row in rows)
    if kept >= len(owners) and not bystanders:
        assert looked_up == [None]  # every user, in one read
        return
    asked = [sub for call in looked_up for sub in call]
    if kept >= len(owners):
        assert sorted(asked) == owners  # each owner once, no one else
        return
    assert len(asked) > len(owners) and all(len(call) <= max(kept, 2) for call in looked_up)
