from django.apps import AppConfig
from django.db.models.signals import post_migrate


class MigratorConfig(AppConfig):
    name = "migrator"
    verbose_name = "Migration console"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django_q.signals import post_spawn

        from migrator import checks  # noqa: F401  (registers the system checks)

        post_migrate.connect(verify_schedule_align, sender=self)
        post_spawn.connect(cluster_worker_start)


def cluster_worker_start(sender, **kwargs) -> None:
    """In each django-q2 worker process as it starts: the jobs it runs
    (batches, live sync, verification) are background work."""
    from migrator.services.engine import priority_lower

    priority_lower()


def verify_schedule_align(sender, *, using, apps=None, **kwargs) -> None:
    """After every `manage.py migrate`: the verification schedule's
    interval follows VERIFY_EVERY_HOURS (0008 created it). ``apps`` is the
    migrated state's registry; `flush` sends none, and the project's is used."""
    from django.apps import apps as installed

    from migrator.services.watch import verify_schedule_align as align

    try:
        schedules = (apps or installed).get_model("django_q", "Schedule")
    except LookupError:  # django_q migrated back to zero
        return
    align(schedules=schedules, using=using)
