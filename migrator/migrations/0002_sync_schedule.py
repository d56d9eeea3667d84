"""The live-sync schedule: django-q2 runs migrator.tasks.paintings_sync every
minute once a cluster (manage.py qcluster) is up."""

from django.db import migrations


def create_schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.get_or_create(
        name="paintings_sync",
        defaults={"func": "migrator.tasks.paintings_sync", "schedule_type": "I", "minutes": 1, "repeats": -1},
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="paintings_sync").delete()


class Migration(migrations.Migration):
    dependencies = [("migrator", "0001_initial"), ("django_q", "0018_task_success_index")]
    operations = [migrations.RunPython(create_schedule, remove_schedule)]
