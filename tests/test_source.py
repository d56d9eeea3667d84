"""The MongoDB boundary, against a real wire-protocol server."""

import datetime as dt

import pytest
from bson import ObjectId

from migrator import source
from migrator.kinds import PAINTING


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
    batches = list(source.documents_batches(batch_size=3, kind=PAINTING))
    assert [len(batch) for batch in batches] == [3, 3, 2]
    assert refs(sum(batches, [])) == sorted(refs(paintings))


def test_it_filters_anonymous_owner_and_migrated(paintings):
    assert len(list(source.documents_stream(anonymous=True, kind=PAINTING))) == 4
    assert len(list(source.documents_stream(anonymous=False, kind=PAINTING))) == 4
    assert len(list(source.documents_stream(owner=source.owner_for_handle("@jeffrey"), kind=PAINTING))) == 3
    assert refs(source.documents_stream(migrated=True, kind=PAINTING)) == refs(paintings[:1])
    assert source.documents_count(migrated=False, kind=PAINTING) == 7
    assert len(list(source.documents_stream(limit=2, kind=PAINTING))) == 2


def test_it_resumes_after_a_ref(paintings):
    ordered = sorted(refs(paintings))
    assert refs(source.documents_stream(after_ref=ordered[4], kind=PAINTING)) == ordered[5:]


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
        [source.WriteBack(ref=str(document["_id"]), rkey=f"rkey{n}", uri=f"at://did:plc:anon/computer.aesthetic.painting/rkey{n}") for n, document in enumerate(targets)],
        kind=PAINTING,
    )
    assert written == set()  # every write-back matched its painting
    stored = mongo_db.paintings.find_one({"_id": targets[1]["_id"]})
    assert stored["atproto"] == {"rkey": "rkey1", "uri": "at://did:plc:anon/computer.aesthetic.painting/rkey1"}
    assert source.rkeys_clear([str(targets[1]["_id"])], kind=PAINTING) == 1
    assert "atproto" not in mongo_db.paintings.find_one({"_id": targets[1]["_id"]})


def test_duplicate_codes_name_the_oldest_painting(mongo_db):
    first, second = ObjectId(), ObjectId()
    mongo_db.paintings.insert_many([{"_id": second, "code": "dup"}, {"_id": first, "code": "dup"}, {"_id": ObjectId(), "code": "one"}])
    assert source.duplicate_codes(kind=PAINTING) == {"dup": str(first)}


def test_a_bad_ref_is_a_value_error():
    with pytest.raises(ValueError, match="not a MongoDB ObjectId"):
        source.documents_query(refs=["nope"], kind=PAINTING)


def test_write_back_names_the_paintings_it_could_not_find(paintings, mongo_db):
    kept, deleted = paintings[4], paintings[5]
    mongo_db.paintings.delete_one({"_id": deleted["_id"]})
    unmatched = source.rkeys_write_back(
        [source.WriteBack(ref=str(document["_id"]), rkey="3k2yihcrp6f2c", uri="at://x/y/3k2yihcrp6f2c") for document in (kept, deleted)], kind=PAINTING
    )
    assert unmatched == {str(deleted["_id"])}
    assert mongo_db.paintings.find_one({"_id": kept["_id"]})["atproto"]["rkey"] == "3k2yihcrp6f2c"


def test_guests_are_paintings_whose_user_is_missing_or_null(paintings, mongo_db):
    mongo_db.paintings.insert_many([{"_id": ObjectId(), "user": None}, {"_id": ObjectId(), "user": 42}])
    assert len(list(source.documents_stream(anonymous=True, kind=PAINTING))) == 5  # 4 without user, 1 null
    assert len(list(source.documents_stream(anonymous=False, kind=PAINTING))) == 5  # 4 owned, 1 with a user that is not an id


def test_unusable_credentials_say_why_without_the_password(mongo_db):
    secret = "s3cret-pa55word"
    mongo_db.users.insert_many(
        [
            {"_id": "numeric", "atproto": {"did": "did:plc:n", "handle": "n.test", "password": 12345678}},
            {"_id": "no-password", "atproto": {"did": "did:plc:p", "handle": "p.test"}},
            {"_id": "list-handle", "atproto": {"handle": ["x"], "password": secret}},
            {"_id": "string", "atproto": secret},
            {"_id": "no-did", "atproto": {"handle": "d.test", "password": secret}},
            {"_id": "none"},
        ]
    )
    found = source.credentials_for(["numeric", "no-password", "list-handle", "string", "no-did", "none"])
    assert set(found) == {"numeric", "no-password", "list-handle", "string", "no-did"}
    assert found["numeric"].problem == "users.atproto is unusable: password is int, not text."
    assert found["no-password"].problem == "users.atproto has no password."
    assert found["list-handle"].problem == "users.atproto is unusable: handle is list, not text."
    assert found["string"].problem == "users.atproto is str, not a document."
    assert (found["no-did"].usable, found["no-did"].did) == (True, "")
    for credentials in found.values():
        assert secret not in credentials.problem and "12345678" not in credentials.problem
        assert secret not in repr(credentials)


def test_handles_that_are_not_text_are_absent(mongo_db):
    mongo_db["@handles"].insert_many([{"_id": "a", "handle": 7}, {"_id": "b", "handle": ""}, {"_id": "c", "handle": "cee"}, {"_id": "d", "handle": None}])
    assert source.handles_for(["a", "b", "c", "d"]) == {"c": "cee"}


def test_a_date_outside_pythons_range_decodes_instead_of_breaking_the_cursor(mongo_db):
    """SecantusDB (Python too) cannot store such a date, so this decodes the
    BSON a real MongoDB would send with the codec options the product uses."""
    import bson
    from bson.datetime_ms import DatetimeMS

    document = bson.decode(bson.encode({"when": DatetimeMS(2**62)}), codec_options=source.database().codec_options)
    assert isinstance(document["when"], DatetimeMS)


def test_a_closed_client_stops_its_threads_and_the_next_read_opens_another(paintings):
    import threading
    import time

    source.clients_close()
    others = set(threading.enumerate())  # the test's own client's among them
    source.database().command("ping")
    monitors = [thread for thread in threading.enumerate() if thread not in others]
    assert monitors  # a client watches its server from threads of its own
    source.clients_close()
    deadline = time.monotonic() + 5
    while any(thread.is_alive() for thread in monitors) and time.monotonic() < deadline:
        time.sleep(0.05)
    # Left running, they would hold up the interpreter's exit (pymongo joins them then).
    assert not any(thread.is_alive() for thread in monitors)
    assert len(list(source.documents_batches(batch_size=10, kind=PAINTING))[0]) == len(paintings)
