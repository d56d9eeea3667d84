from migrator.management.commands import seed


class Command(seed.Command):
    help = (
        "Mirror MongoDB's paintings into the migration state table. Safe to re-run: "
        "new paintings are added, changed fields updated, migrated rows keep their rkey "
        "and history. Malformed documents are skipped with a readable reason. (manage.py seed paintings.)"
    )
    actor = "command:seed_paintings"
    kind_name = "paintings"
