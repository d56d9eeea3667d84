from migrator.management.commands import backfill


class Command(backfill.Command):
    help = (
        "Migrate paintings from MongoDB to ATProto. Seeds the state table first, then migrates "
        "pending and failed paintings in batches (small accounts packed together) on --workers processes; "
        "resumes where it stopped (migrated paintings are left alone). Ctrl-C stops cleanly "
        "after the batches in flight. (manage.py backfill paintings.)"
    )
    actor = "command:backfill_paintings"
    kind_name = "paintings"
