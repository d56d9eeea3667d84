"""Alerts and verifications, the time of live sync's last run, and the
paintings_verify schedule: django-q2 runs migrator.tasks.paintings_verify
every VERIFY_EVERY_HOURS (first a full interval after this migration; every
later `manage.py migrate` keeps the interval in step with the setting, see
migrator.apps)."""

import datetime as dt

from django.conf import settings
from django.db import migrations, models
from django.utils import timezone


def create_schedule(apps, schema_editor):
    every = dt.timedelta(hours=settings.VERIFY_EVERY_HOURS)
    apps.get_model("django_q", "Schedule").objects.get_or_create(
        name="paintings_verify",
        defaults={
            "func": "migrator.tasks.paintings_verify", "schedule_type": "I", "minutes": int(every.total_seconds() // 60),
            "repeats": -1, "next_run": timezone.now() + every,
        },
    )  # fmt: skip


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="paintings_verify").delete()


class Migration(migrations.Migration):

    dependencies = [
        ('migrator', '0007_encrypt_account_secrets'),
        ('django_q', '0018_task_success_index'),
    ]

    operations = [
        migrations.CreateModel(
            name='Alert',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('key', models.CharField(max_length=64, unique=True)),
                ('subject', models.CharField(max_length=200)),
                ('message', models.TextField(blank=True)),
                ('opened_at', models.DateTimeField()),
                ('last_sent_at', models.DateTimeField(blank=True, null=True)),
                ('cleared_at', models.DateTimeField(blank=True, db_index=True, null=True)),
            ],
            options={
                'ordering': ['-opened_at'],
            },
        ),
        migrations.CreateModel(
            name='Verification',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('actor', models.CharField(max_length=150)),
                ('started_at', models.DateTimeField(db_index=True)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('paintings', models.PositiveIntegerField(default=0)),
                ('records', models.PositiveIntegerField(default=0)),
                ('differences', models.PositiveIntegerField(default=0)),
                ('counts', models.JSONField(blank=True, default=dict)),
                ('examples', models.JSONField(blank=True, default=list)),
                ('error', models.TextField(blank=True)),
            ],
            options={
                'ordering': ['-started_at', '-id'],
            },
        ),
        migrations.AddField(
            model_name='synccursor',
            name='synced_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(create_schedule, remove_schedule),
    ]
