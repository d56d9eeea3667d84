from migrator.management.commands import compare
from migrator.services.compare import ACTOR


class Command(compare.Command):
    help = compare.Command.help.replace("documents of KIND (paintings, moods, kidlisp, pieces, tapes, news, or all)", "paintings") + " (manage.py compare paintings.)"
    actor = ACTOR
    kind_name = "paintings"
