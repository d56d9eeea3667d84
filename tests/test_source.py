"""The MongoDB boundary, against a real wire-protocol server."""

import datetime as dt

import pytest
from bson import ObjectId

from migrator import source


@pytest.fixture
def paintings(mongo_db):
    mongo_db["@handles"].insert_many([{"_id": "auth0|jeffrey", "handle": "jeffrey"}, {"_id": "auth0|ann", "handle": "ann"}])
    mongo_db.users.insert_many(
        [
            {"_id": "auth0|jeffrey", "atproto": {"did": "did:plc:jeff", "handle": "jeffrey.test", "password": "hunter2"}},
            {"_id": "auth0|ann"},
        ]
    )
    documents = [
        {"_id": ObjectId(), "code": f"c{n}", "slug": f"2023.1.1.0.0.{n:02d}.000", "when": dt.datetime(2023, 1, 1, tzinfo=dt.UTC), **owner}
        for n, owner in enumerate([{"user": "auth0|jeffrey"}] * 3 + [{"user": "auth0|ann"}] + [{}] * 4)
    ]
    documents[0]["atproto"] = {"rkey": "3k2yihcrp6f2c"}
    mongo_db.paintings.insert_many(documents)
    return documents


def refs(documents):
    return [str(document["_id"]) for document in documents]


def test_it_streams_in_id_order_in_batches(paintings):
    batches = list(source.paintings_batches(batch_size=3))
    assert [len(batch) for batch in batches] == [3, 3, 2]
    assert refs(sum(batches, [])) == sorted(refs(paintings))


def test_it_filters_anonymous_owner_and_migrated(paintings):
    assert len(list(source.paintings_stream(anonymous=True))) == 4
    assert len(list(source.paintings_stream(anonymous=False))) == 4
    assert len(list(source.paintings_stream(owner=source.owner_for_handle("@jeffrey")))) == 3
    assert refs(source.paintings_stream(migrated=True)) == refs(paintings[:1])
    assert source.paintings_count(migrated=False) == 7
    assert len(list(source.paintings_stream(limit=2))) == 2


def test_it_resumes_after_a_ref(paintings):
    ordered = sorted(refs(paintings))
    assert refs(source.paintings_stream(after_ref=ordered[4])) == ordered[5:]


def test_credentials_hide_the_password(paintings):
    credentials = source.credentials_for(["auth0|jeffrey", "auth0|ann", "auth0|nobody"])
    assert set(credentials) == {"auth0|jeffrey"}
    assert credentials["auth0|jeffrey"].password == "hunter2"
    assert "hunter2" not in repr(credentials) and "hunter2" not in str(credentials["auth0|jeffrey"])


def test_handles_are_looked_up_in_bulk(paintings):
    assert source.handles_for(["auth0|jeffrey", "auth0|ann", "auth0|x"]) == {"auth0|jeffrey": "jeffrey", "auth0|ann": "ann"}
    assert source.owner_for_handle("nobody") is None


def test_write_back_sets_rkey_and_uri_in_bulk(paintings, mongo_db):
    targets = paintings[4:6]
    written = source.rkeys_write_back(
        source.WriteBack(ref=str(document["_id"]), rkey=f"rkey{n}", uri=f"at://did:plc:anon/computer.aesthetic.painting/rkey{n}")
        for n, document in enumerate(targets)
    )
    assert written == 2
    stored = mongo_db.paintings.find_one({"_id": targets[1]["_id"]})
    assert stored["atproto"] == {"rkey": "rkey1", "uri": "at://did:plc:anon/computer.aesthetic.painting/rkey1"}
    assert source.rkeys_clear([str(targets[1]["_id"])]) == 1
    assert "atproto" not in mongo_db.paintings.find_one({"_id": targets[1]["_id"]})


def test_duplicate_codes_name_the_oldest_painting(mongo_db):
    first, second = ObjectId(), ObjectId()
    mongo_db.paintings.insert_many([{"_id": second, "code": "dup"}, {"_id": first, "code": "dup"}, {"_id": ObjectId(), "code": "one"}])
    assert source.duplicate_codes() == {"dup": str(first)}


def test_a_bad_ref_is_a_value_error():
    with pytest.raises(ValueError, match="not a MongoDB ObjectId"):
        source.paintings_query(refs=["nope"])
