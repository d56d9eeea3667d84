"""The console for every kind: the list filtered by kind shows what a person
knows each by (a mood's text, a program's code, a tape's slug), the
dashboard shows progress per kind and in all, and staff migrate, take down
and read the audit trail of a mood as of a painting, with today's
permissions. Against the real PDS and SecantusDB."""

import html
import io
import re

import pytest
from django.core.management import call_command
from django.urls import reverse

from migrator.kinds import KINDS
from migrator.models import Transfer, Status
from tests.plugins.kinds import document_fields, media_put

CHANGELIST = reverse("admin:migrator_transfer_changelist")
DASHBOARD = reverse("admin:migrator_dashboard")


@pytest.fixture
def seeded(world):
    """One document of every kind, seeded (not migrated)."""
    handle = next(iter(world.users))
    refs = {"painting": world.add_painting(handle=handle)}
    for kind in KINDS.values():
        if kind.name == "painting":
            continue
        refs[kind.name] = world.add_document(kind, handle=handle, **document_fields(kind, 7))
        media_put(world, kind, world.documents[refs[kind.name]])
    call_command("seed", "all", stdout=io.StringIO())
    return refs


def test_a_kinds_list_shows_what_a_person_knows_it_by(as_watcher, seeded, world):
    mood = world.documents[seeded["mood"]]["mood"]
    program = "$" + world.documents[seeded["kidlisp"]]["code"]
    tape = world.documents[seeded["tape"]]["slug"]
    headline = world.documents[seeded["news"]]["title"]

    everything = as_watcher.get(CHANGELIST).content.decode()
    assert "column-kind_column" in everything and "column-label_column" in everything
    for text in (mood, program, tape, headline):
        assert text in everything

    moods = as_watcher.get(CHANGELIST, {"kind": "mood"}).content.decode()
    assert mood in moods and program not in moods and tape not in moods
    assert "column-label_column" in moods and "column-code" not in moods and "column-thumbnail" not in moods
    tapes = as_watcher.get(CHANGELIST, {"kind": "tape"}).content.decode()
    assert tape in tapes and mood not in tapes and "column-thumbnail" in tapes
    paintings = as_watcher.get(CHANGELIST, {"kind": "painting"}).content.decode()
    painting = world.paintings[seeded["painting"]]
    assert "column-label_column" in paintings and "column-code" in paintings and mood not in paintings
    assert painting["slug"] in paintings and f'<td class="field-code">{painting["code"]}</td>' in paintings
    # A code is found wherever the kind keeps it (a tape's, like a painting's, is in its row's content).
    by_code = as_watcher.get(CHANGELIST, {"q": world.documents[seeded["tape"]]["code"]}).content.decode()
    assert tape in by_code and mood not in by_code
    # Each kind is one choice of the kind filter, and search finds a mood by its text.
    for kind in KINDS.values():
        assert f"?kind={kind.name}" in everything, kind.name
    assert mood in as_watcher.get(CHANGELIST, {"q": mood.split()[0]}).content.decode()


def test_the_dashboard_shows_each_kind_and_all(as_watcher, seeded):
    html = as_watcher.get(DASHBOARD).content.decode()
    assert 'id="kinds"' in html
    for kind in KINDS.values():
        assert f'id="kind-{kind.name}"' in html and f"?kind={kind.name}&amp;status__exact=failed" in html
    status = as_watcher.get(reverse("admin:migrator_dashboard_json")).json()
    assert set(status["kinds"]) == {kind.plural for kind in KINDS.values()}
    assert all(counts == {"pending": 1} for counts in status["kinds"].values()), status["kinds"]


def test_staff_migrate_take_down_and_read_the_trail_of_a_mood(as_runner, seeded, world):
    mood = Transfer.objects.get(kind="mood", ref=seeded["mood"])
    # The action queues it (as for a painting); the engine the job runs migrates it.
    from migrator.services import engine

    response = as_runner.post(CHANGELIST + "?kind=mood", {"action": "migrate_selected", "_selected_action": [mood.pk]}, follow=True)
    assert response.status_code == 200
    mood.refresh_from_db()
    assert mood.status == Status.QUEUED
    engine.transfers_migrate([mood.pk], actor="worker:test")
    mood.refresh_from_db()
    assert mood.status == Status.MIGRATED and list(world.records(KINDS["mood"])) == [seeded["mood"]]

    page = as_runner.get(reverse("admin:migrator_transfer_change", args=[mood.pk])).content.decode()
    assert "Mood" in page and world.documents[seeded["mood"]]["mood"] in page and "Wrote record at://" in page
    assert "computer.aesthetic.mood" in page  # the record link reads the mood's collection

    response = as_runner.post(
        CHANGELIST, {"action": "take_down", "_selected_action": [mood.pk], "reason": "asked by its author", "apply": "1"}, follow=True
    )
    assert response.status_code == 200
    mood.refresh_from_db()
    assert mood.status == Status.SKIPPED and mood.skip_reason == "taken_down"
    assert world.records(KINDS["mood"]) == {}
    assert "atproto" not in world.mongo.moods.find_one({"_id": world.documents[seeded["mood"]]["_id"]})


def test_a_watcher_cannot_run_an_action_on_any_kind(as_watcher, seeded):
    mood = Transfer.objects.get(kind="mood", ref=seeded["mood"])
    response = as_watcher.post(CHANGELIST, {"action": "migrate_selected", "_selected_action": [mood.pk]})
    assert response.status_code == 403
    mood.refresh_from_db()
    assert mood.status == Status.PENDING


def page_text(response) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())))


def test_each_kinds_list_is_titled_with_the_kind(client, runner, watcher, seeded):
    client.force_login(runner)
    moods = client.get(CHANGELIST, {"kind": "mood"})
    assert "<h1>Select mood to migrate</h1>" in moods.content.decode()
    assert "<title>Select mood to migrate |" in moods.content.decode()
    assert "Migration console › Moods" in page_text(moods)
    everything = client.get(CHANGELIST)
    assert "<h1>Select transfer to migrate</h1>" in everything.content.decode() and "Migration console › Transfers" in page_text(everything)
    assert "Painting migration" not in everything.content.decode()

    client.force_login(watcher)  # who may only look is not offered to migrate
    assert "<h1>Select kidlisp to view</h1>" in client.get(CHANGELIST, {"kind": "kidlisp"}).content.decode()


def test_the_dashboard_counts_documents_and_names_the_commands_that_do_what_it_says(as_watcher, seeded, world):
    text = page_text(as_watcher.get(DASHBOARD))
    assert f"of {len(KINDS)} documents left" in text and "documents a minute" in text
    assert "No failed documents." in text and "No skipped documents." in text
    assert "compare_paintings" not in text and "(manage.py compare all does it at once)" in text

    Transfer.objects.exclude(kind="mood").delete()  # one kind alone: counted by its own name
    text = page_text(as_watcher.get(DASHBOARD))
    assert "of 1 moods left" in text and "No failed moods." in text
