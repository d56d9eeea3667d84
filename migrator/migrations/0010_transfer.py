"""The state table says what it holds: ``PaintingMigration`` becomes
``Transfer`` (one MongoDB document of any kind on its way to an ATProto
record), ``MigrationEvent`` becomes ``TransferEvent`` (its ``painting``
becomes ``transfer``), a verification counts ``documents``, and the two
schedules are named for what they do: ``paintings_sync`` is ``live_sync``,
``paintings_verify`` is ``verification``, renamed in place (their next run
and interval kept) so no second schedule runs beside the old one.

Every row, event and id is kept: the tables are renamed, not copied. Django
renames the content types itself (so the admin's log keeps its links); the
default permissions are renamed here, so the staff and groups that hold
them keep them. Reversible: migrating back to 0009 renames everything back.
"""

from django.db import migrations

SCHEDULES = {"paintings_sync": "live_sync", "paintings_verify": "verification"}
MODELS = {"paintingmigration": "transfer", "migrationevent": "transferevent"}
VERBOSE = {"painting migration": "transfer", "migration event": "transfer event"}


def schedules_rename(apps, names: dict[str, str]) -> None:
    schedule = apps.get_model("django_q", "Schedule")
    for old, new in names.items():
        schedule.objects.filter(name=old).update(name=new, func=f"migrator.tasks.{new}")


def permissions_rename(apps, models_: dict[str, str], verbose: dict[str, str]) -> None:
    permission = apps.get_model("auth", "Permission")
    for old, new in models_.items():
        for row in permission.objects.filter(content_type__app_label="migrator", codename__endswith=f"_{old}"):
            action = row.codename.removesuffix(f"_{old}")
            if permission.objects.filter(content_type=row.content_type, codename=f"{action}_{new}").exists():
                continue  # a twin made by hand: both are left as they are
            row.codename = f"{action}_{new}"
            for old_words, new_words in verbose.items():
                row.name = row.name.replace(old_words, new_words)
            row.save(update_fields=["codename", "name"])


def forwards(apps, schema_editor):
    schedules_rename(apps, SCHEDULES)
    permissions_rename(apps, MODELS, VERBOSE)


def backwards(apps, schema_editor):
    schedules_rename(apps, {new: old for old, new in SCHEDULES.items()})
    permissions_rename(apps, {new: old for old, new in MODELS.items()}, {new: old for old, new in VERBOSE.items()})


class Migration(migrations.Migration):

    dependencies = [
        ("migrator", "0009_kinds"),
        ("django_q", "0018_task_success_index"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RenameModel("PaintingMigration", "Transfer"),
        migrations.RenameModel("MigrationEvent", "TransferEvent"),
        migrations.RenameField("TransferEvent", "painting", "transfer"),
        migrations.RenameField("Verification", "paintings", "documents"),
        migrations.RenameIndex("Transfer", new_name="transfer_kind_status", old_name="migration_kind_status"),
        migrations.RenameIndex("Transfer", new_name="transfer_status_account", old_name="painting_status_account"),
        migrations.RenameIndex("Transfer", new_name="transfer_when", old_name="painting_when"),
        migrations.AlterModelOptions(
            name="transfer",
            options={"ordering": ["-when", "-id"], "permissions": [("run_migration", "Can start, retry and skip transfers")]},
        ),
        migrations.RunPython(forwards, backwards),
    ]
