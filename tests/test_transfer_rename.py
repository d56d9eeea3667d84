"""Migration 0010 renames the state table (PaintingMigration to Transfer,
MigrationEvent to TransferEvent) and the two schedules, keeping every row,
event, grant and admin link, and reverses; and the old admin URLs redirect.

The database is filled at 0009 through that schema's own models (what a
console of the code before the rename holds), migrated forward, compared,
migrated back, compared again; on SQLite and on PostgreSQL (bin/test's two
legs)."""

import datetime as dt

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Permission, User
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from migrator.kinds import KINDS
from migrator.models import Status
from tests.migration_steps import migrate, state_at

BEFORE, AFTER = ("migrator", "0009_kinds"), ("migrator", "0010_transfer")
# The columns that changed name, old to new, by model (old name).
RENAMED_COLUMNS = {"MigrationEvent": {"painting_id": "transfer_id"}, "Verification": {"paintings": "documents"}}
MODELS = {"PaintingMigration": "Transfer", "MigrationEvent": "TransferEvent", "Account": "Account", "RemovalHold": "RemovalHold",
          "Alert": "Alert", "Verification": "Verification", "RateLimitWindow": "RateLimitWindow", "SyncCursor": "SyncCursor"}  # fmt: skip
SCHEDULES = {"paintings_sync": "live_sync", "paintings_verify": "verification"}


@pytest.fixture
def at_0009(transactional_db):
    yield from state_at(BEFORE)


def fill(apps) -> None:
    """Rows of every kind and status, two events each, and one of every
    other table, through the 0009 models."""
    schedule = apps.get_model("django_q", "Schedule")  # as 0002 and 0008 made them (a test before this one may have flushed them)
    schedule.objects.get_or_create(name="paintings_sync", defaults={"func": "migrator.tasks.paintings_sync", "schedule_type": "I", "minutes": 1, "repeats": -1})
    schedule.objects.get_or_create(name="paintings_verify", defaults={"func": "migrator.tasks.paintings_verify", "schedule_type": "I", "minutes": 1440, "repeats": -1})
    rows = apps.get_model("migrator", "PaintingMigration")
    events = apps.get_model("migrator", "MigrationEvent")
    now = timezone.now()
    for number, (kind, status) in enumerate((kind, status) for kind in KINDS for status in Status.values):
        row = rows.objects.create(
            kind=kind, ref=f"{number:024x}", label=f"label {number}", content={"text": f"é {number}"}, slug=f"slug-{number}",
            owner=f"auth0|{number % 3}", owner_handle=f"h{number % 3}", status=status, attempts=number % 4, rkey=f"3k{number:011d}",
            when=now - dt.timedelta(days=number), record_uri=f"at://did:plc:x/{kind}/{number}", last_error="oops" if status == "failed" else "",
            skip_reason="nuked" if status == "skipped" else "", written_by="schedule:paintings_sync",
        )  # fmt: skip
        events.objects.create(painting=row, from_status="", to_status="pending", actor="seed", message=f"Seeded {number}.")
        events.objects.create(painting=row, from_status="pending", to_status=status, actor="worker:1", message=f"To {status}.")
    apps.get_model("migrator", "Account").objects.create(did="did:plc:anon", handle="anon.test", is_anonymous=True, password="sekret")
    apps.get_model("migrator", "RemovalHold").objects.create(kind="mood", checked_at=now, count=9, known=10, bound=5, database="aesthetic", examples=[{"ref": "1"}])
    apps.get_model("migrator", "Alert").objects.create(key="tripwire:moods", subject="Held", opened_at=now)
    apps.get_model("migrator", "Verification").objects.create(actor="schedule:paintings_verify", started_at=now, kinds=["painting", "mood"], paintings=7, records=6, differences=1)
    apps.get_model("migrator", "RateLimitWindow").objects.create(name="uploadBlob", scope="ip", limit=1000, window_seconds=86400, reset_at=now)
    apps.get_model("migrator", "SyncCursor").objects.create(name="moods_sync", position="abc")


def contents(apps, names: dict[str, str]) -> dict:
    """Every row of the console's tables, by the old model names, with the
    columns under their old names; the schedules by their old names."""
    old_column = {new: old for columns in RENAMED_COLUMNS.values() for old, new in columns.items()}
    tables = {}
    for old, name in names.items():
        model = apps.get_model("migrator", name)
        tables[old] = [{old_column.get(column, column): value for column, value in row.items()} for row in model.objects.order_by("id").values()]
    schedules = apps.get_model("django_q", "Schedule").objects.values("id", "name", "func", "minutes", "next_run", "repeats")
    renamed = {new: old for old, new in SCHEDULES.items()}
    tables["schedules"] = sorted(({**s, "name": renamed.get(s["name"], s["name"]), "func": s["func"].rsplit(".", 1)[0]} for s in schedules), key=lambda s: s["id"])
    return tables


def test_the_rename_keeps_every_row_event_schedule_grant_and_admin_link_and_reverses(at_0009):
    fill(at_0009)
    before = contents(at_0009, {old: old for old in MODELS})
    assert len(before["PaintingMigration"]) == len(KINDS) * len(Status.values) and len(before["MigrationEvent"]) == 2 * len(before["PaintingMigration"])
    assert {s["name"] for s in before["schedules"]} == set(SCHEDULES)
    staff = User.objects.create_user("ann", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["view_paintingmigration", "run_migration", "view_migrationevent"]))
    first = before["PaintingMigration"][0]
    row_type = ContentType.objects.get(app_label="migrator", model="paintingmigration")
    LogEntry.objects.create(user=staff, content_type=row_type, object_id=str(first["id"]), object_repr="row", action_flag=CHANGE, change_message="Retried.")

    after_apps = migrate(AFTER)

    assert contents(after_apps, MODELS) == before
    assert after_apps.get_model("migrator", "Transfer").objects.get(pk=first["id"]).events.count() == 2
    schedules = {s.name: s.func for s in after_apps.get_model("django_q", "Schedule").objects.all()}
    assert schedules == {"live_sync": "migrator.tasks.live_sync", "verification": "migrator.tasks.verification"}
    staff = User.objects.get(pk=staff.pk)  # no cached permissions
    assert staff.has_perms(["migrator.view_transfer", "migrator.run_migration", "migrator.view_transferevent"])
    assert not Permission.objects.filter(codename__endswith="_paintingmigration").exists()
    assert ContentType.objects.get(pk=row_type.pk).model == "transfer"  # the same content type, renamed
    assert LogEntry.objects.get().get_admin_url() == f"/admin/migrator/transfer/{first['id']}/change/"

    back_apps = migrate(BEFORE)

    assert contents(back_apps, {old: old for old in MODELS}) == before
    assert User.objects.get(pk=staff.pk).has_perms(["migrator.view_paintingmigration", "migrator.run_migration"])
    assert ContentType.objects.get(pk=row_type.pk).model == "paintingmigration"


@pytest.mark.django_db
@pytest.mark.parametrize("old, new", [
    ("/admin/migrator/paintingmigration/", "/admin/migrator/transfer/"),
    ("/admin/migrator/paintingmigration/?kind=mood&status__exact=failed", "/admin/migrator/transfer/?kind=mood&status__exact=failed"),
    ("/admin/migrator/paintingmigration/42/change/", "/admin/migrator/transfer/42/change/"),
    ("/admin/migrator/migrationevent/", "/admin/migrator/transferevent/"),
    ("/admin/migrator/paintingmigration/%0d%0aLocation:%20https://evil.example/", "/admin/migrator/transfer/%0D%0ALocation%3A%20https%3A//evil.example/"),
])  # fmt: skip
def test_the_old_admin_urls_redirect_to_the_same_page_renamed(client, old, new):
    response = client.get(old)

    assert response.status_code == 301
    assert response["Location"] == new
