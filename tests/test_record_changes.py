"""Records follow what the console would write, not only MongoDB's fields:
a renamed user, a new USER_MEDIA_URL, a new lexicon version. A rewrite
whose image is the same keeps the record's thumbnail blob (no image fetched,
nothing uploaded). Real PDS, SecantusDB and images over HTTP; the only
thing watched (not replaced) is the upload call, counted."""

import io
import json
import secrets
import shutil

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from migrator.models import Transfer, SkipReason, Status
from migrator.services import lifecycle
from migrator.services.compare import documents_compare
from migrator.kinds import PAINTING
from tests.test_engine import migrate_all

pytestmark = [pytest.mark.pds, pytest.mark.django_db]


@pytest.fixture
def lexicon_dir(settings, tmp_path):
    """A copy of lexicons/ a test may change, and a lexicon account of its own."""
    shutil.copytree(settings.LEXICON_DIR, tmp_path / "lexicons")
    settings.LEXICON_DIR = tmp_path / "lexicons"
    settings.LEXICON_ACCOUNT_HANDLE = f"lexicon{secrets.token_hex(3)}.test"
    settings.LEXICON_ACCOUNT_PASSWORD = ""
    return settings.LEXICON_DIR


def test_a_renamed_user_gets_new_image_urls_with_no_image_fetched_or_uploaded(world, uploads):
    ann = list(world.users)[0]
    refs = [world.add_painting(handle=ann) for _ in range(3)]
    migrate_all()
    before = {ref: world.records()[ref][0] for ref in refs}
    uploads.clear()
    # Renamed in @handles; the image server still keeps the files under the old
    # handle (as a CDN can lag): the new URLs do not answer yet.
    world.mongo["@handles"].update_one({"_id": world.users[ann].sub}, {"$set": {"handle": "ann-renamed"}})
    new = world.add_painting(handle=ann)  # one painting the storage has under the new handle already
    folder = world.images / "media" / "@ann-renamed" / "painting"
    folder.mkdir(parents=True)
    slug = world.paintings[new]["slug"]
    (folder / f"{slug}.png").write_bytes((world.images / "media" / f"@{ann}" / "painting" / f"{slug}.png").read_bytes())

    migrate_all()  # the new one and the rewrites share a batch and an applyWrites

    assert len(uploads) == 1 and len(world.records()[new]) == 1
    for ref in refs:
        row = Transfer.objects.get(ref=ref)
        (record,) = world.records()[ref]
        assert (row.status, row.rkey) == (Status.MIGRATED, before[ref].rkey)
        assert "/@ann-renamed/painting/" in record.value["imageUrl"]
        assert record.value["thumbnail"] == before[ref].value["thumbnail"]
    assert documents_compare(kind=PAINTING).clean


def test_a_new_media_url_makes_records_stale_until_staff_confirm_the_rewrite(world, settings, lexicon_dir, uploads, client, runner):
    refs = [world.add_painting(handle=list(world.users)[0]), world.add_painting()]
    call_command("deploy_lexicon", stdout=io.StringIO())
    migrate_all()
    uploads.clear()
    settings.USER_MEDIA_URL = settings.USER_MEDIA_URL.replace("/media", "/cdn/media")

    migrate_all()  # nothing happens by itself: the rewrite waits for a person
    assert lifecycle.transfers_stale_shape(kind=PAINTING).count() == 2
    client.force_login(runner)
    page = client.get(reverse("admin:migrator_rewrite"))
    assert page.context["count"] == 2
    assert "/cdn/media/" in page.context["after"] and "/cdn/media/" not in page.context["before"]
    assert b"Records of an older shape <strong id=\"stale-shape\">2</strong>" in client.get(reverse("admin:migrator_dashboard")).content

    client.post(reverse("admin:migrator_rewrite"))
    migrate_all()

    assert lifecycle.transfers_stale_shape(kind=PAINTING).count() == 0 and uploads == []
    assert "/cdn/media/" in world.records()[refs[0]][0].value["imageUrl"]
    assert documents_compare(kind=PAINTING).clean


def test_a_new_lexicon_is_published_before_records_take_its_shape_and_lifts_skips(world, lexicon_dir, uploads):
    ref = world.add_painting()
    long_slug = world.add_painting(slug="202401.101010.101010.101010.101010.101010:202401.101010.101010.101010")  # 69: over 64
    call_command("deploy_lexicon", stdout=io.StringIO())
    migrate_all()
    assert Transfer.objects.get(ref=long_slug).skip_reason == SkipReason.TOO_LONG
    path = lexicon_dir / "computer" / "aesthetic" / "painting.json"
    lexicon = json.loads(path.read_text())
    lexicon["defs"]["main"]["record"]["properties"]["slug"]["maxLength"] = 128
    path.write_text(json.dumps(lexicon))

    migrate_all()  # the skip lifts at the next seed
    row = Transfer.objects.get(ref=long_slug)
    assert row.status == Status.MIGRATED and len(world.records()[long_slug]) == 1
    assert list(lifecycle.transfers_stale_shape(kind=PAINTING).values_list("ref", flat=True)) == [ref]
    with pytest.raises(CommandError, match="deploy_lexicon first"):
        call_command("rewrite_stale_records", confirm=True, stdout=io.StringIO())
    assert Transfer.objects.get(ref=ref).status == Status.MIGRATED

    call_command("deploy_lexicon", stdout=io.StringIO())
    uploads.clear()
    call_command("rewrite_stale_records", confirm=True, stdout=io.StringIO())
    migrate_all()

    assert lifecycle.transfers_stale_shape(kind=PAINTING).count() == 0 and uploads == []
    assert documents_compare(kind=PAINTING).clean
