"""Records and blobs through migrator.pds, against the real local PDS."""

from datetime import datetime, timezone

import pytest

from migrator import pds
from migrator.pds import Write
from migrator.tid import tid_for_painting

pytestmark = pytest.mark.pds
COLLECTION = "computer.aesthetic.painting"
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


def painting_record(ref: str, **changes) -> dict:
    record = {"slug": "2023.8.24.16.21.09.123", "code": "a3b", "imageUrl": "https://example.test/p.png",
              "when": "2023-08-24T16:21:09.123Z", "ref": ref}
    return {**record, **changes}


def rkey_for(n: int) -> str:
    return tid_for_painting(when=datetime(2023, 8, 24, 16, 21, 9, n * 1000, tzinfo=timezone.utc), ref=f"{n:024x}")


@pytest.fixture
def repo(pds_account):
    return pds.repo_for(did=pds_account.did, password=pds_account.password)


def test_a_record_with_an_uploaded_thumbnail_round_trips(repo):
    blob = repo.blob_upload(PNG, mime_type="image/png")
    created = repo.record_create(collection=COLLECTION, rkey=rkey_for(1), record=painting_record("1", thumbnail=blob))

    stored = repo.record_get(collection=COLLECTION, rkey=rkey_for(1))
    assert stored.cid == created.cid and created.rkey == rkey_for(1)
    assert stored.value["thumbnail"]["ref"]["$link"] == blob.cid.encode()


def test_writing_the_same_tid_twice_is_a_conflict_that_names_the_stored_record(repo):
    repo.record_create(collection=COLLECTION, rkey=rkey_for(2), record=painting_record("2"))

    with pytest.raises(pds.RecordConflict) as conflict:
        repo.record_create(collection=COLLECTION, rkey=rkey_for(2), record=painting_record("2"))
    assert conflict.value.permanent
    assert conflict.value.existing[rkey_for(2)]["ref"] == "2"
    records, _ = repo.records_list(collection=COLLECTION)
    assert len(records) == 1


def test_put_of_the_same_tid_twice_leaves_one_record(repo):
    first = repo.record_put(collection=COLLECTION, rkey=rkey_for(3), record=painting_record("3"))
    again = repo.record_put(collection=COLLECTION, rkey=rkey_for(3), record=painting_record("3"))
    assert first.cid == again.cid
    assert len(repo.records_list(collection=COLLECTION)[0]) == 1


def test_apply_writes_takes_200_writes_in_one_call(repo):
    writes = [Write("create", COLLECTION, rkey_for(n), painting_record(str(n))) for n in range(200)]
    results = repo.apply_writes(writes)

    assert [result.rkey for result in results] == [rkey_for(n) for n in range(200)]
    page, cursor = repo.records_list(collection=COLLECTION, limit=100)
    assert len(page) == 100 and cursor


def test_apply_writes_refuses_201_writes_before_calling(repo):
    writes = [Write("create", COLLECTION, rkey_for(n), painting_record(str(n))) for n in range(201)]
    with pytest.raises(ValueError, match="200"):
        repo.apply_writes(writes)


def test_a_batch_with_one_existing_rkey_writes_nothing_and_says_which(repo):
    repo.apply_writes([Write("create", COLLECTION, rkey_for(10), painting_record("10"))])

    batch = [Write("create", COLLECTION, rkey_for(n), painting_record(str(n))) for n in (10, 11, 12)]
    with pytest.raises(pds.RecordConflict) as conflict:
        repo.apply_writes(batch)

    assert list(conflict.value.existing) == [rkey_for(10)]
    assert repo.record_get(collection=COLLECTION, rkey=rkey_for(11)) is None  # atomic: all or nothing


def test_apply_writes_update_overwrites_an_existing_rkey_but_refuses_a_missing_one(repo):
    repo.apply_writes([Write("create", COLLECTION, rkey_for(20), painting_record("20"))])
    repo.apply_writes([Write("update", COLLECTION, rkey_for(20), painting_record("20", code="new"))])
    assert repo.record_get(collection=COLLECTION, rkey=rkey_for(20)).value["code"] == "new"

    with pytest.raises(pds.RecordConflict) as conflict:
        repo.apply_writes([Write("update", COLLECTION, rkey_for(21), painting_record("21"))])
    assert conflict.value.missing == [rkey_for(21)]
    assert repo.record_get(collection=COLLECTION, rkey=rkey_for(21)) is None


def test_apply_writes_delete_of_a_missing_rkey_is_a_conflict_but_delete_record_succeeds(repo):
    with pytest.raises(pds.RecordConflict):
        repo.apply_writes([Write("delete", COLLECTION, rkey_for(30))])
    repo.record_delete(collection=COLLECTION, rkey=rkey_for(30))


def test_a_record_pointing_at_a_blob_never_uploaded_is_permanent(repo):
    blob = repo.blob_upload(PNG, mime_type="image/png")
    missing = blob.model_dump(mode="json", by_alias=True)
    missing["ref"]["$link"] = "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy"
    with pytest.raises(pds.PdsError) as failure:
        repo.record_create(collection=COLLECTION, rkey=rkey_for(40), record=painting_record("40", thumbnail=missing))
    assert failure.value.permanent and failure.value.error == "BlobNotFound"


def test_a_missing_record_reads_as_none(repo):
    assert repo.record_get(collection=COLLECTION, rkey=rkey_for(50)) is None


@pytest.mark.usefixtures("db")
def test_an_unreachable_pds_is_transient_after_retries(settings, pds_account):
    repo = pds.repo_for(did=pds_account.did, password=pds_account.password)
    repo.client.update_base_url("http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(pds.PdsError) as failure:
        repo.record_get(collection=COLLECTION, rkey=rkey_for(60))
    assert failure.value.transient and failure.value.status is None


def test_records_at_many_keys_are_found_by_listing_and_few_pages_are_spent_on_a_large_collection(repo):
    from migrator.pds import calls

    keys = [rkey_for(n) for n in range(10, 260)]
    for chunk in (keys[:200], keys[200:]):
        repo.apply_writes([Write("create", COLLECTION, rkey, painting_record(rkey)) for rkey in chunk])
    missing = rkey_for(999)

    before = calls.REQUESTS[0]
    found = repo.records_at(collection=COLLECTION, rkeys=[*keys[-40:], missing])  # the newest: the first page
    assert sorted(found) == sorted(keys[-40:]) and found[keys[-1]].value["ref"] == keys[-1]
    assert calls.REQUESTS[0] - before <= 4  # the collection's 3 pages (a key not there is looked for to the end), not 41 gets

    before = calls.REQUESTS[0]
    oldest = repo.records_at(collection=COLLECTION, rkeys=keys[:4])  # three pages away: two pages, then each alone
    assert sorted(oldest) == keys[:4]
    assert calls.REQUESTS[0] - before == 2 + 4

    before = calls.REQUESTS[0]
    assert repo.records_at(collection=COLLECTION, rkeys=[missing]) == {}
    assert calls.REQUESTS[0] - before == 1
