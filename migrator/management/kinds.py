"""What the commands of every kind share: the KIND argument (``paintings``,
``moods``, ... or ``all``) and the words a run's output uses for it.

``seed``, ``backfill`` and ``compare`` take KIND; ``seed_paintings``,
``backfill_paintings`` and ``compare_paintings`` are the same commands with
KIND fixed to paintings, as the plan names them."""

from dataclasses import dataclass

from django.core.management.base import CommandError
from pymongo.errors import PyMongoError

from migrator.kinds import KINDS, RecordKind, kind_for
from migrator.services.lifecycle import kind_in_use

ALL = "all"


def kind_choices() -> list[str]:
    return [kind.plural for kind in KINDS.values()] + [ALL]


def kind_argument(parser) -> None:
    """The positional KIND of a command."""
    parser.add_argument("kind", metavar="KIND", choices=kind_choices(), help=f"What to move: {', '.join(kind_choices())}.")


def kinds_named(name: str) -> list[RecordKind]:
    """The kinds KIND names (for ``all``: every kind MongoDB or the state
    table has). Raises CommandError."""
    if name == ALL:
        try:
            return [kind for kind in KINDS.values() if kind_in_use(kind)]
        except PyMongoError as error:
            raise CommandError(f"MongoDB could not be read ({type(error).__name__}). Is MONGODB_URI right and the server up?", returncode=2) from error
    try:
        return [kind_for(name)]
    except LookupError as error:
        raise CommandError(str(error)) from error


@dataclass(frozen=True)
class Words:
    """How a run's output names what it moves: "paintings" for one kind,
    "documents" for several."""

    kinds: tuple[RecordKind, ...]

    @property
    def plural(self) -> str:
        return self.kinds[0].plural if len(self.kinds) == 1 else "documents"

    @property
    def names(self) -> list[str]:
        return [kind.name for kind in self.kinds]
