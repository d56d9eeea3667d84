"""Every row carries only what every kind has: a painting's slug and code,
and whether its recording was found, move into the row's ``content`` (where
a mood keeps its text and a program its source), and the thumbnail's
columns are the record's blob's (``blob_cid``, ``blob_size``, ``blob_mime``,
``blob_fallback``: a painting's thumbnail, a tape's video).

Each kind's ``content`` gets the keys its ``row_values`` writes, so the next
seed finds every row as it would write it and changes nothing; no
fingerprint changes (they are digests of the same values). A slug or code
that is not empty is kept whatever the kind (a kind this migration does not
know, a row made by hand): nothing is dropped. Reversible: migrating back to 0010 moves the values back into
their columns and takes the keys out of ``content``.
"""

from django.db import migrations, models

# The keys each kind's row_values wrote into content when this migration was
# made (a migration keeps its own copy: the kinds' code may change later).
KEYS = {"painting": ("slug", "code"), "tape": ("slug", "code"), "piece": ("slug",), "kidlisp": ("code",), "mood": (), "news": ()}
MOVED = ("slug", "code")
CHUNK = 2000


def _rows(apps):
    return apps.get_model("migrator", "Transfer").objects.order_by("pk")


def _in_chunks(queryset):
    batch = []
    for row in queryset.iterator(chunk_size=CHUNK):
        batch.append(row)
        if len(batch) == CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def forwards(apps, schema_editor):
    rows = _rows(apps)
    for batch in _in_chunks(rows.only("pk", "kind", "content", "slug", "code", "has_recording")):
        for row in batch:
            content = dict(row.content) if isinstance(row.content, dict) else {}
            names = [name for name in MOVED if name in KEYS.get(row.kind, ()) or getattr(row, name)]
            content.update({name: getattr(row, name) for name in names})
            if row.has_recording:
                content["recording"] = True
            row.content = content
        rows.model.objects.bulk_update(batch, ["content"])


def backwards(apps, schema_editor):
    rows = _rows(apps)
    for batch in _in_chunks(rows.only("pk", "content")):
        for row in batch:
            content = dict(row.content) if isinstance(row.content, dict) else {}
            row.slug = str(content.pop("slug", ""))[:255]
            row.code = str(content.pop("code", ""))[:64]
            row.has_recording = content.pop("recording", False) is True
            row.content = content
        rows.model.objects.bulk_update(batch, ["content", "slug", "code", "has_recording"])


class Migration(migrations.Migration):

    dependencies = [("migrator", "0010_transfer")]

    operations = [
        migrations.RunPython(forwards, backwards, elidable=False),
        migrations.RemoveField("transfer", "slug"),
        migrations.RemoveField("transfer", "code"),
        migrations.RemoveField("transfer", "has_recording"),
        migrations.RenameField("transfer", "thumbnail_size", "blob_size"),
        migrations.RenameField("transfer", "thumbnail_mime", "blob_mime"),
        migrations.RenameField("transfer", "thumbnail_fallback", "blob_fallback"),
        migrations.RenameField("transfer", "thumbnail_cid", "blob_cid"),
        migrations.AlterField("transfer", "blob_size", models.PositiveIntegerField("blob bytes", null=True, blank=True)),
    ]
