"""A removal hold's examples name each document under ``document``, as
every kind does, not ``painting`` (what the key said while paintings were
the only kind). Holds stored before keep their examples, renamed in place;
an example without the old key is left as it is. Reversible."""

from django.db import migrations


def _rename_key(apps, old: str, new: str) -> None:
    holds = apps.get_model("migrator", "RemovalHold")
    for hold in holds.objects.all().only("pk", "examples").iterator():
        examples = hold.examples if isinstance(hold.examples, list) else []
        renamed = [_renamed(example, old, new) for example in examples]
        if renamed != examples:
            holds.objects.filter(pk=hold.pk).update(examples=renamed)


def _renamed(example, old: str, new: str):
    if not isinstance(example, dict) or old not in example or new in example:
        return example
    return {(new if key == old else key): value for key, value in example.items()}


def forwards(apps, schema_editor):
    _rename_key(apps, "painting", "document")


def backwards(apps, schema_editor):
    _rename_key(apps, "document", "painting")


class Migration(migrations.Migration):
    dependencies = [("migrator", "0011_kind_neutral_columns")]

    operations = [migrations.RunPython(forwards, backwards)]
