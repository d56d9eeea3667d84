"""Every kind's whole path, against the real PDS and SecantusDB: seed,
backfill, the records read back (and valid against our lexicon), the key
written back where the kind keeps it, compare clean, and a second run that
writes nothing. The documents come from each kind's own sample factory
(``good_documents``), so a new kind is tested here with no change."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from migrator import source
from migrator.kinds import KINDS
from migrator.lexicon import lexicons_load, record_problems
from migrator.lexicon_official import official_problems
from migrator.models import Transfer, Status

OTHER_KINDS = [kind for kind in KINDS.values() if kind.name != "painting"]


def run(*args, **options) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


def good_documents(world, kind) -> list[str]:
    """Three documents of ``kind`` that make records: one by each user and,
    where the kind has guests, one by a guest (the anonymous account)."""
    from tests.plugins.kinds import document_fields, media_put

    handles = list(world.users)
    owners = [handles[0], handles[1], None if kind.name in GUESTS else handles[0]]
    refs = []
    for number, handle in enumerate(owners):
        fields = document_fields(kind, number)
        ref = world.add_document(kind, handle=handle, **fields)
        media_put(world, kind, world.documents[ref])
        refs.append(ref)
    return refs


GUESTS = {"kidlisp", "piece", "tape"}  # the kinds guests make (notes/collections.md)


@pytest.mark.parametrize("kind", OTHER_KINDS, ids=[kind.plural for kind in OTHER_KINDS])
def test_a_kind_goes_the_whole_way_and_a_second_run_writes_nothing(world, kind, settings):
    refs = good_documents(world, kind)

    out = run("backfill", kind.plural, workers=1)
    assert f"Migrating 3 {kind.plural}" in out, out
    assert "migrated: 3" in out, out

    records = world.records(kind)
    assert sorted(records) == sorted(refs)
    for ref in refs:
        (record,) = records[ref]
        row = Transfer.objects.get(kind=kind.name, ref=ref)
        assert row.status == Status.MIGRATED and row.rkey == record.rkey and row.record_uri == record.uri
        assert record_problems(record.value, nsid=kind.nsid) == []
        keys = world.mongo[kind.mongodb_collection].find_one({"_id": source.object_id(ref)})[kind.key_document]
        assert keys["rkey"] == record.rkey and keys["uri"] == record.uri
        if "cid" in kind.key_fields:
            assert keys["cid"] == record.cid
        owner = world.documents[ref].get("user")
        assert record.uri.startswith(f"at://{row.account_did}/") and (row.account_did == world.anonymous_did) == (owner is None)

    # Read back from the PDS, they are valid by Bluesky's own validators too.
    answers = official_problems(list(lexicons_load().values()), [(kind.nsid, records[ref][0].value) for ref in refs])
    assert answers.records == [[], [], []], answers.records

    report = json.loads(run("compare", kind.plural, as_json=True))
    assert report["differences"] == 0 and report["documents"] == 3, report

    again = run("backfill", kind.plural, workers=1)
    assert "Migrating 0" in again and "PDS requests: 0" in again, again
    assert world.records(kind) == records


def test_backfill_all_moves_every_kind_and_compare_all_is_clean(world):
    from tests.plugins.kinds import document_fields

    painting = world.add_painting(handle=next(iter(world.users)))
    refs = {kind.name: good_documents(world, kind) for kind in OTHER_KINDS}
    out = run("backfill", "all", workers=1)
    assert f"migrated: {1 + 3 * len(OTHER_KINDS)}" in out, out
    assert Transfer.objects.get(kind="painting", ref=painting).status == Status.MIGRATED
    for kind in OTHER_KINDS:
        assert set(world.records(kind)) == set(refs[kind.name])
    shown = run("compare", "all")
    assert shown.count("No differences.") == len(KINDS), shown
    assert document_fields  # the factory is shared with the hostile-document tests


def test_the_painting_commands_stay_the_paintings_own(world):
    """backfill_paintings moves paintings only, whatever else MongoDB has."""
    mood = KINDS["mood"]
    world.add_document(mood, handle=next(iter(world.users)), mood="not yet")
    world.add_painting(handle=next(iter(world.users)))
    out = run("backfill_paintings", workers=1)
    assert "Migrating 1 paintings" in out and "migrated: 1" in out, out
    assert not Transfer.objects.filter(kind="mood").exists()


def test_records_without_a_blob_go_two_hundred_to_an_apply_writes(world, monkeypatch):
    """250 moods of one author: two calls (200 and 50), not one per mood, nor
    one per painting-sized batch of 50."""
    mood = KINDS["mood"]
    author = next(iter(world.users))
    world.mongo.moods.insert_many([{"mood": f"m{number}", "when": world_when(number), "user": world.users[author].sub} for number in range(250)])
    run("seed", "moods")
    calls = apply_writes_recorded(monkeypatch)
    out = run("backfill", "moods", workers=1)
    assert "migrated: 250" in out, out
    assert sorted(len(writes) for _, writes in calls) == [50, 200], calls
    assert len(world.records(mood)) == 250


def test_an_accounts_records_of_every_kind_without_a_blob_go_in_one_commit(world, settings, monkeypatch):
    """One author's mood, three programs and a piece, another's mood and
    program, a guest's piece: `backfill all` writes each account's records of
    every blob-less kind in one applyWrites (three commits, not six), and each
    kind's keys still go back to its own collection, once for the batch (one
    bulk write and one transition per kind, not one per account and kind).
    Each account stays open from its first kind to its write, even with one
    session kept open."""
    from tests.plugins.kinds import document_fields

    from migrator.pds import sessions
    from migrator.services.engine import writeback

    settings.PDS_OPEN_SESSIONS = 1
    reopened = []
    real_reopen = sessions._reopen
    monkeypatch.setattr(sessions, "_reopen", lambda repo: reopened.append(repo.did) or real_reopen(repo))

    first, second = list(world.users)[:2]
    owned = {
        first: [("mood", 0), ("kidlisp", 0), ("kidlisp", 1), ("kidlisp", 2), ("piece", 0)],
        second: [("mood", 1), ("kidlisp", 3)],
        None: [("piece", 1)],
    }
    refs = {handle: [(name, world.add_document(KINDS[name], handle=handle, **document_fields(KINDS[name], number))) for name, number in documents]
            for handle, documents in owned.items()}  # fmt: skip
    calls = apply_writes_recorded(monkeypatch)
    write_backs, transitions = [], []
    real_write_back, real_transition = source.rkeys_write_back, writeback.transfers_transition_each
    monkeypatch.setattr(source, "rkeys_write_back", lambda items, *, kind: write_backs.append(kind.name) or real_write_back(items, kind=kind))
    monkeypatch.setattr(writeback, "transfers_transition_each", lambda changes, **kw: transitions.append(len(changes)) or real_transition(changes, **kw))
    out = run("backfill", "all", workers=1)
    assert "migrated: 8" in out and "repository commits: 3" in out, out
    assert sorted(write_backs) == ["kidlisp", "mood", "piece"]  # one batch: once per kind
    assert sorted(transitions) == [2, 2, 4]
    assert reopened == []
    assert sorted(sorted(write.collection for write in writes) for _, writes in calls) == sorted(
        [sorted(KINDS[name].nsid for name, _ in documents) for documents in owned.values()]
    ), calls
    assert len({did for did, _ in calls}) == 3
    for handle, documents in refs.items():
        for name, ref in documents:
            kind = KINDS[name]
            (record,) = world.records(kind)[ref]
            row = Transfer.objects.get(kind=name, ref=ref)
            assert row.status == Status.MIGRATED and row.record_uri == record.uri
            assert world.mongo[kind.mongodb_collection].find_one({"_id": source.object_id(ref)})[kind.key_document]["rkey"] == record.rkey
            assert (row.account_did == world.anonymous_did) == (handle is None)


def apply_writes_recorded(monkeypatch) -> list[tuple[str, list]]:
    """Every applyWrites the engine sends from now on, as (repo DID, writes),
    each still sent to the PDS."""
    from migrator import pds

    calls = []
    real = pds.Repo.apply_writes

    def recorded(self, writes, **kwargs):
        calls.append((self.did, list(writes)))
        return real(self, writes, **kwargs)

    monkeypatch.setattr(pds.Repo, "apply_writes", recorded)
    return calls


def world_when(number: int):
    import datetime as dt

    return dt.datetime(2024, 3, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=number)


@pytest.mark.parametrize("kind", OTHER_KINDS, ids=[kind.plural for kind in OTHER_KINDS])
def test_compare_repair_mends_a_kinds_drift(world, kind):
    """A record edited on the PDS, a duplicate written beside one, a key lost
    in MongoDB: compare names each, --repair mends them, compare is clean."""
    from migrator import pds

    edited, duplicated, unkeyed = good_documents(world, kind)
    run("backfill", kind.plural, workers=1)
    records = world.records(kind)
    repo = pds.repo_for(did=records[edited][0].uri.split("/")[2])
    tampered = dict(records[edited][0].value)
    tampered["when"] = "2001-01-01T00:00:00.000Z"
    repo.record_put(collection=kind.nsid, rkey=records[edited][0].rkey, record=tampered)
    other = pds.repo_for(did=records[duplicated][0].uri.split("/")[2])
    other.record_put(collection=kind.nsid, rkey="3zzzzzzzzzz22", record=records[duplicated][0].value)
    world.mongo[kind.mongodb_collection].update_one({"_id": world.documents[unkeyed]["_id"]}, {"$unset": {kind.key_document: ""}})

    with pytest.raises(CommandError, match="4 differences"):
        run("compare", kind.plural)
    found = json.loads(_compare_json(kind))
    assert {"field_mismatch", "duplicate_record", "rkey_mismatch"} <= set(found["counts"]), found["counts"]

    run("compare", kind.plural, repair=True)
    clean = json.loads(run("compare", kind.plural, as_json=True))
    assert clean["differences"] == 0, clean
    records = world.records(kind)
    assert [len(records[ref]) for ref in (edited, duplicated, unkeyed)] == [1, 1, 1]
    assert records[edited][0].value["when"] != "2001-01-01T00:00:00.000Z"


def _compare_json(kind) -> str:
    out = io.StringIO()
    try:
        call_command("compare", kind.plural, as_json=True, stdout=out, stderr=io.StringIO())
    except CommandError:
        pass
    return out.getvalue()


def test_live_sync_brings_a_new_document_of_any_kind_and_removes_a_deleted_one(world):
    """The schedule alone: a program added after the backfill is queued by
    live sync; one deleted from MongoDB loses its record at the full re-read."""
    from migrator.services import engine, sync

    kidlisp = KINDS["kidlisp"]
    kept, deleted = good_documents(world, kidlisp)[:2]
    run("backfill", "kidlisp", workers=1)
    sync.live_sync(actor="schedule:test")  # the cursors start here

    added = world.add_document(kidlisp, handle=next(iter(world.users)), **{"code": "late1", "source": "(wipe red)"})
    world.mongo.kidlisp.delete_one({"_id": world.documents[deleted]["_id"]})
    result = sync.live_sync(actor="schedule:test")
    assert result.new == 1 and result.queued == 1, result
    assert Transfer.objects.get(kind="kidlisp", ref=added).status == Status.QUEUED

    from migrator.models import SyncCursor

    SyncCursor.objects.filter(name="kidlisp_sync").update(ran_at=None)  # the hourly full re-read is due
    result = sync.live_sync(actor="schedule:test")
    assert result.gone == 1, result
    engine.transfers_migrate(Transfer.objects.filter(kind="kidlisp", status__in=engine.RUNNABLE).values_list("id", flat=True), actor="worker:test")
    row = Transfer.objects.get(kind="kidlisp", ref=deleted)
    assert (row.status, row.skip_reason) == (Status.SKIPPED, "gone") and "Removed record at://" in row.skip_detail
    records = world.records(kidlisp)
    assert deleted not in records and {kept, added} <= set(records) and len(records) == 3


def test_a_tape_rewritten_for_a_new_slug_keeps_its_video_blob_with_no_fetch_or_upload(world):
    """The same tape (same code): its record is updated in place, the video
    blob it holds kept, though the MP4 is no longer on the storage."""
    from migrator import pds

    tape = KINDS["tape"]
    ref = good_documents(world, tape)[0]
    run("backfill", "tapes", workers=1)
    (before,) = world.records(tape)[ref]
    (world.images / "tapes" / f"{world.documents[ref]['code']}.mp4").unlink()
    world.mongo.tapes.update_one({"_id": world.documents[ref]["_id"]}, {"$set": {"slug": "wand-renamed-2025.10.24"}})
    uploads = []
    real = pds.Repo.blob_upload

    def counted(self, *args, **kwargs):
        uploads.append(args)
        return real(self, *args, **kwargs)

    pds.Repo.blob_upload = counted
    try:
        out = run("backfill", "tapes", workers=1)
    finally:
        pds.Repo.blob_upload = real
    assert "migrated: 1" in out, out
    (after,) = world.records(tape)[ref]
    assert after.rkey == before.rkey and after.value["slug"] == "wand-renamed-2025.10.24"
    assert after.value["video"] == before.value["video"] and uploads == []
    assert world.mongo.tapes.find_one({"_id": world.documents[ref]["_id"]})["at"]["cid"] == after.cid
