"""Recovery: any one of the three stores (the console's database, MongoDB's
write-backs, the PDS's records) lost and rebuilt from the other two by the
README's steps, to the same records, with nothing uploaded twice.

All real: the local PDS, SecantusDB, images and MP4s over HTTP. Every kind
is in the corpus, in more accounts than PDS_OPEN_SESSIONS (set low here).
The PDS's requests are counted by route as the console's HTTP clients see
their responses (nothing replaced)."""

import io
import json
from collections import Counter

import pytest
from bson import ObjectId
from django.core.management import CommandError, call_command

from migrator import pds, source
from migrator.kinds import KINDS
from migrator.models import Alert, Transfer, Status
from migrator.sample import ImageJob, render_image
from migrator.services import watch
from tests.plugins.console import console_tables_emptied
from tests.plugins.kinds import document_fields, media_put
from tests.plugins.world import _numbers, add_user

pytestmark = pytest.mark.pds
GUESTS = {"kidlisp", "piece", "tape"}  # the kinds guests make (notes/collections.md)
UPLOAD = "com.atproto.repo.uploadBlob"
WRITES = ("com.atproto.repo.applyWrites", "com.atproto.repo.createRecord", "com.atproto.repo.putRecord", "com.atproto.repo.deleteRecord")
LOGIN = "com.atproto.server.createSession"
# What a row must hold again after its store is rebuilt.
ROW_FACTS = ("status", "rkey", "record_uri", "record_cid", "account_did", "blob_cid", "blob_size", "blob_mime", "has_recording")


@pytest.fixture
def calls(monkeypatch):
    """Every PDS request the console's clients make, by XRPC method."""
    seen = Counter()
    real = pds.limits.Meter.observe

    def counting(self, path, headers):
        seen[path.removeprefix("/xrpc/")] += 1
        return real(self, path, headers)

    monkeypatch.setattr(pds.limits.Meter, "observe", counting)
    pds.forget_sessions()  # clients made from now on count
    return seen


@pytest.fixture
def corpus(world, settings):
    """Every kind migrated, in six accounts with two sessions open at once."""
    settings.PDS_OPEN_SESSIONS = 2
    for name in ("cy", "di", "ed"):
        add_user(world, f"{name}{next(_numbers)}")
    handles = list(world.users)
    for number, handle in enumerate(handles):
        world.add_painting(handle=handle)
        world.add_painting(handle=handle)
    # A user's painting with its recording on storage, and a guest's whose slug names one.
    recorded = world.add_painting(handle=handles[0])
    slug = world.paintings[recorded]["slug"]
    (world.images / "media" / f"@{handles[0]}" / "painting" / f"{slug}.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    world.add_painting(handle=None, slug="2024.1.1.1.1.1.001:2024.1.1.1.1.1.002")
    world.add_painting(handle=None)
    # A thumbnail two of a user's paintings share: one blob on the PDS for both.
    twin = world.add_painting(handle=handles[1])
    twin_png = world.images / "media" / f"@{handles[1]}" / "painting" / f"{world.paintings[twin]['slug']}.png"
    other = world.add_painting(handle=handles[1])
    (twin_png.parent / f"{world.paintings[other]['slug']}.png").write_bytes(twin_png.read_bytes())
    world.refs = {("painting", ref) for ref in world.paintings}
    for kind in KINDS.values():
        if kind.name == "painting":
            continue
        owners = [handles[2], handles[3]] + ([None] if kind.name in GUESTS else [])
        for number, handle in enumerate(owners):
            ref = world.add_document(kind, handle=handle, **document_fields(kind, number))
            media_put(world, kind, world.documents[ref])
            world.refs.add((kind.name, ref))
    run("backfill", "all", workers=1)
    assert set(Transfer.objects.values_list("status", flat=True)) == {Status.MIGRATED}
    assert _compare_all()[1] == 0
    world.twin = twin
    return world


def run(*args, **options) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


def _compare_all(*args) -> tuple[dict, int]:
    out = io.StringIO()
    try:
        call_command("compare", "all", "--json", "--examples", "0", *args, stdout=out, stderr=io.StringIO())
    except CommandError as error:
        return json.loads(out.getvalue()), error.returncode
    return json.loads(out.getvalue()), 0


def rows() -> dict:
    return {(row.kind, row.ref): {name: getattr(row, name) for name in ROW_FACTS} for row in Transfer.objects.all()}


def mongodb_keys() -> dict:
    keys = {}
    for kind in KINDS.values():
        for document in source.kind_collection(kind).find({}, {kind.key_document: 1}):
            keys[kind.name, str(document["_id"])] = document.get(kind.key_document)
    return keys


def pds_records(world) -> dict:
    found = {}
    for kind in KINDS.values():
        for ref, records in world.records(kind).items():
            assert len(records) == 1, f"{kind.name} {ref} has {len(records)} records"
            found[kind.name, ref] = (records[0].uri, records[0].cid, records[0].value)
    return found


def snapshot(world) -> tuple[dict, dict, dict]:
    return rows(), mongodb_keys(), pds_records(world)


def the_console_database_lost(settings) -> None:
    """A lost disk and the key with it: every table empty, a new key, a new process."""
    console_tables_emptied()
    settings.SECRETS_ENCRYPTION_KEYS = ["tgrzsmBYTtNoSW2h1MiHzMLbHy8pJnkN1sKgWkh0Ucs="]


def records_lost(world, refs_by_kind: dict) -> list[tuple[str, str, str]]:
    """Delete these documents' records on the PDS (an older backup restored there)."""
    lost = []
    for (kind_name, ref) in refs_by_kind:
        row = Transfer.objects.get(kind=kind_name, ref=ref)
        pds.repo_for(did=row.account_did).record_delete(collection=KINDS[kind_name].nsid, rkey=row.rkey)
        lost.append((kind_name, ref, row.rkey))
    return lost


@pytest.mark.slow
def test_a_lost_console_database_is_rebuilt_from_mongodb_and_the_pds_with_nothing_written(corpus, settings, calls):
    before = snapshot(corpus)
    first_run = Transfer.objects.exclude(written_by="").values_list("written_by", flat=True).first()
    the_console_database_lost(settings)
    calls.clear()

    run("create_anon_account")  # the anonymous account's password reset through PDS_ADMIN_PASSWORD
    out = run("backfill", "all", workers=1)

    report, status = _compare_all()
    assert status == 0 and report["differences"] == 0, report
    after = snapshot(corpus)
    for key, facts in before[0].items():
        assert after[0][key] == facts, key
    assert after == before
    assert calls[UPLOAD] == 0 and sum(calls[route] for route in WRITES) == 0, calls
    assert calls[LOGIN] == len(corpus.users) + 1  # each account once: its session was in the lost database
    assert "adopted from earlier attempts" in out
    # Which run wrote the records is lost with the database: undo says so.
    listed = run("undo_run", "--list")
    assert "unknown run (found by the seed of" in listed and first_run not in listed
    said = run("undo_run", "--run", first_run)
    assert "0 records" in said and "cannot be undone" in said and "rebuilt" in said


@pytest.mark.parametrize("how", ["seed", "live sync"])
def test_lost_write_backs_are_written_back_by_the_next_full_seed_with_no_pds_write(corpus, calls, how):
    before = snapshot(corpus)
    for kind in KINDS.values():
        source.kind_collection(kind).update_many({}, {"$unset": {kind.key_document: ""}})
    assert all(key is None for key in mongodb_keys().values())
    calls.clear()

    if how == "seed":
        out = run("seed", "all")
        assert out.count("keys written back to MongoDB") == len(KINDS)
    else:
        from migrator import tasks

        result = tasks.live_sync()
        assert result["keys_restored"] == len(before[0])

    assert calls[UPLOAD] == 0 and sum(calls[route] for route in WRITES) == 0, calls
    assert snapshot(corpus) == before
    row = Transfer.objects.filter(kind="painting").first()
    assert "MongoDB had lost atproto.rkey" in row.events.first().message
    report, status = _compare_all()
    assert status == 0, report


@pytest.mark.slow
def test_lost_records_are_named_by_compare_and_written_again_under_their_keys(corpus, calls):
    before = snapshot(corpus)
    users = list(corpus.users)
    lost = {("painting", corpus.twin)}  # its thumbnail is kept by its twin: not uploaded again
    lost |= {("painting", ref) for ref, document in corpus.paintings.items() if document.get("user") == corpus.users[users[0]].sub}
    lost |= {("painting", next(ref for ref, document in corpus.paintings.items() if "user" not in document))}
    lost |= {(kind, ref) for kind, ref in corpus.refs if kind in ("mood", "kidlisp", "tape")}
    named = records_lost(corpus, sorted(lost))
    calls.clear()

    report, status = _compare_all()
    assert status == 1
    found = {
        (one_kind, example["ref"], example["rkey"])
        for plural, one in report["kinds"].items()
        for one_kind in [next(kind.name for kind in KINDS.values() if kind.plural == plural)]
        for example in one["examples"].get("missing_record", [])
    }
    assert found == set(named) and report["differences"] == len(named), report
    verification = watch.verification_run()
    assert verification.differences == len(named)
    assert Alert.objects.filter(key="drift", cleared_at=None).exists()
    calls.clear()

    report, status = _compare_all("--repair")

    assert status == 0 and sum(report["repaired"].values()) == len(named), report
    with_blob = [(kind, ref) for kind, ref, _ in named if KINDS[kind].blob_field and ref != corpus.twin]
    assert calls[UPLOAD] == len(with_blob), calls
    assert sum(calls[route] for route in WRITES) == len(named), calls
    assert calls[LOGIN] == 0
    assert snapshot(corpus) == before
    assert _compare_all()[1] == 0


@pytest.mark.slow
def test_the_console_database_and_recent_records_lost_together_converge_without_a_duplicate(corpus, settings, calls):
    before = snapshot(corpus)
    users = list(corpus.users)
    lost = {("painting", ref) for ref, document in corpus.paintings.items() if document.get("user") == corpus.users[users[1]].sub}
    lost |= {(kind, ref) for kind, ref in corpus.refs if kind == "mood"}
    named = records_lost(corpus, sorted(lost))
    the_console_database_lost(settings)
    calls.clear()

    run("create_anon_account")
    run("backfill", "all", workers=1)

    # The thumbnails went with their records: uploaded again, the twins' shared one once.
    assert calls[UPLOAD] == sum(1 for kind, _, _ in named if KINDS[kind].blob_field) - 1
    assert sum(calls[route] for route in WRITES) == 3  # one applyWrites for the user's paintings, one for each of two accounts' mood
    assert Transfer.objects.filter(status=Status.MIGRATED).count() == len(corpus.refs)
    assert snapshot(corpus)[1:] == before[1:]  # MongoDB's keys and the PDS's records, record for record
    after = rows()
    for key, facts in before[0].items():
        assert after[key] == facts, key
    assert _compare_all()[1] == 0
