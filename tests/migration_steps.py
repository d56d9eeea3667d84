"""Moving the test database to one migration and back, as an operator does.

    @pytest.fixture
    def at_0011(transactional_db):
        yield from state_at(("migrator", "0011_kind_neutral_columns"))

    def test_...(at_0011):
        rows = at_0011.get_model("migrator", "Transfer")  # that schema's own model
        ...
        after = migrate(("migrator", "0012_..."))
"""

from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def migrate(target: tuple[str, str]):
    """``manage.py migrate app migration``, as an operator runs it (the
    command, not the executor alone: it is what renames content types),
    and the models of that state."""
    _command(target)
    return MigrationExecutor(connection).loader.project_state([target]).apps


def state_at(target: tuple[str, str]):
    """For a fixture: the models at ``target``, then the database brought
    back to the latest schema for the tests after this one."""
    yield migrate(target)
    _command()


def _command(target: tuple[str, ...] = ()) -> None:
    call_command("migrate", *target, verbosity=0)
    ContentType.objects.clear_cache()
