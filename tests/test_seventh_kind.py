"""Adding a kind stays three files: a seventh kind, the postcard, made up
for this test and kept in its own folder (tests/seventh_kind: a kind module,
a samples module and a lexicon), goes through seed, backfill, compare, the
admin's list and the dashboard with no change to any other file. The
registries are pointed at that folder as they would find the files under
migrator/kinds, migrator/samples and LEXICON_DIR. Against the real PDS and
SecantusDB."""

import io
import json
import re
import shutil
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse

import migrator.kinds
import migrator.samples
from migrator.kinds import KINDS
from migrator.lexicon import record_problems
from migrator.models import Status, Transfer
from migrator.samples import SampleUser, samples_plan
from tests.test_kinds_path import good_documents

pytestmark = [pytest.mark.pds, pytest.mark.django_db]
FOLDER = Path(__file__).parent / "seventh_kind"


def run(*args, **options) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


@pytest.fixture
def postcards(settings, tmp_path):
    """The postcard registered beside the six kinds, for this test only."""
    lexicons = tmp_path / "lexicons"
    shutil.copytree(settings.LEXICON_DIR, lexicons)
    shutil.copytree(FOLDER / "lexicons", lexicons, dirs_exist_ok=True)
    settings.LEXICON_DIR = lexicons
    migrator.kinds.__path__.append(str(FOLDER / "kinds"))
    migrator.samples.__path__.append(str(FOLDER / "samples"))
    six = dict(KINDS)
    KINDS.clear()
    KINDS.update(migrator.kinds._declared())
    try:
        yield KINDS["postcard"]
    finally:
        KINDS.clear()
        KINDS.update(six)
        migrator.kinds.__path__.remove(str(FOLDER / "kinds"))
        migrator.samples.__path__.remove(str(FOLDER / "samples"))
        sys.modules.pop("migrator.kinds.postcard", None)
        sys.modules.pop("migrator.samples.postcard", None)


def test_a_seventh_kind_of_three_files_goes_the_whole_way(world, postcards, client, watcher):
    assert "postcard" in KINDS and len(KINDS) == 7
    # What make_sample_data and bin/demo write has its sample documents too.
    plan = {sample.kind: sample for sample in samples_plan([SampleUser(f"auth0|{n}", f"u{n}", True) for n in range(5)], scale=0.05)}
    assert plan["postcard"].collection == "postcards" and plan["postcard"].documents and not record_problems(
        postcards.record_from_source(postcards.read(plan["postcard"].documents[0]), handle="u0", has_recording=False, blob=None), nsid=postcards.nsid
    )
    refs = good_documents(world, postcards)

    seeded = run("seed", "postcards")
    assert "Seeded 3 postcards from MongoDB" in seeded and "new:        3" in seeded, seeded
    out = run("backfill", "postcards", workers=1)
    assert "migrated: 3" in out, out

    records = world.records(postcards)
    assert sorted(records) == sorted(refs)
    for ref in refs:
        (record,) = records[ref]
        assert record.uri.startswith("at://") and f"/computer.aesthetic.postcard/{record.rkey}" in record.uri
        assert record_problems(record.value, nsid=postcards.nsid) == []
        assert record.value["greeting"] == world.documents[ref]["greeting"]
        assert world.mongo.postcards.find_one({"_id": world.documents[ref]["_id"]})["atproto"]["rkey"] == record.rkey
    assert Transfer.objects.filter(kind="postcard", status=Status.MIGRATED).count() == 3

    report = json.loads(run("compare", "postcards", as_json=True))
    assert report["differences"] == 0 and report["documents"] == 3, report
    everything = json.loads(run("compare", "all", as_json=True))
    assert "postcard" in json.dumps(everything), everything

    client.force_login(watcher)
    listed = client.get(reverse("admin:migrator_transfer_changelist"), {"kind": "postcard"}).content.decode()
    assert "<h1>Select postcard to view</h1>" in listed and "&rsaquo; Postcards" in listed
    assert f"to {world.documents[refs[0]]['to']}: {world.documents[refs[0]]['greeting']}" in listed
    board = client.get(reverse("admin:migrator_dashboard")).content.decode()
    assert re.search(r'<span id="remaining">0</span> of 3 postcards left', board)  # the only kind: counted by its name
    world.add_painting(handle=next(iter(world.users)))
    run("seed", "paintings")
    board = client.get(reverse("admin:migrator_dashboard")).content.decode()
    assert 'id="kind-postcard"' in board and ">Postcards</a>" in board and "of 4 documents left" in board
