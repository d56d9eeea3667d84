from django.apps import AppConfig


class MigratorConfig(AppConfig):
    name = "migrator"
    verbose_name = "Painting migration"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from migrator import checks  # noqa: F401  (registers the system checks)
