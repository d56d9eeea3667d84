#!/usr/bin/env python
"""Benchmark the console: server time and query count of the paintings list
(and the dashboard, and a /metrics scrape) with 100,000 rows. Target: the list under 300 ms with a
number of queries that does not grow with the rows.

    .venv/bin/python bench/admin.py [--rows 100000] [--repeat 7]

Builds a throwaway SQLite database under a temporary folder (migrated, rows
bulk-created with realistic statuses), so it touches nothing of yours. Times
are the median of --repeat renders through Django's test client, after one
warm-up render; the test client runs the whole request in this process, so
the figure is server time without the network.
"""

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAGES = [
    ("list", "/admin/migrator/transfer/"),
    ("list, failed", "/admin/migrator/transfer/?status__exact=failed"),
    ("list, page 500", "/admin/migrator/transfer/?p=500"),
    ("list, search", "/admin/migrator/transfer/?q=painter7"),
    ("list, search a code", "/admin/migrator/transfer/?q=c0100a7"),
    ("list, account", "/admin/migrator/transfer/?account=did:plc:painter0000007"),
    ("dashboard", "/admin/migrator/transfer/dashboard/"),
    ("dashboard json", "/admin/migrator/transfer/dashboard/status.json"),
    ("metrics", "/metrics"),
]
STATUS_WEIGHTS = {"migrated": 55, "pending": 25, "queued": 5, "running": 1, "skipped": 9, "failed": 5}
ERRORS = [
    ("transient", "Timed out after 30 s fetching http://images/painting/{n}.png"),
    ("permanent", "InvalidRecord: Record/slug must not be longer than 256 characters ({n})"),
    ("rate_limited", "Rate limited on upload a {n}-byte blob; retry after 300 s"),
]


def rows(count: int):
    from migrator.models import Transfer

    chance = random.Random(7)
    statuses = list(STATUS_WEIGHTS)
    weights = list(STATUS_WEIGHTS.values())
    start = dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
    now = dt.datetime.now(dt.UTC)
    for number in range(count):
        status = chance.choices(statuses, weights)[0]
        account = chance.randrange(1000)
        anonymous = number % 4 == 0
        kind, error = chance.choice(ERRORS)
        slug = f"2023.{number % 12 + 1}.{number % 28 + 1}.12.30.{number % 60:02d}.000"
        yield Transfer(
            ref=f"{number:024x}",
            label=slug,
            content={"slug": slug, "code": f"c{number:06x}"},
            owner="" if anonymous else f"auth0|{account}",
            owner_handle="" if anonymous else f"painter{account}",
            account_did="did:plc:anonymous000000" if anonymous else f"did:plc:painter{account:07d}",
            when=start + dt.timedelta(minutes=17 * number),
            status=status,
            rkey=f"3k{number:011d}" if status == "migrated" else "",
            record_uri=f"at://did:plc:x/computer.aesthetic.painting/3k{number:011d}" if status == "migrated" else "",
            blob_cid=f"bafkrei{number:020d}" if status == "migrated" else "",
            migrated_at=now - dt.timedelta(seconds=chance.randrange(3600)) if status == "migrated" else None,
            attempts=3 if status == "failed" else int(status == "migrated"),
            error_kind=kind if status == "failed" else "",
            last_error=error.format(n=number) if status == "failed" else "",
            skip_reason="image_missing" if status == "skipped" else "",
        )


def measure(client, url: str, repeat: int) -> tuple[float, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url)  # warm-up: templates compiled, caches filled
    times, queries = [], set()
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url)
            elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
        times.append(elapsed * 1000)
        queries.add(len(captured))
    return statistics.median(times), max(queries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    folder = tempfile.mkdtemp(prefix="bench-admin-")
    os.environ.update({"DATABASE_URL": f"sqlite:///{folder}/admin.sqlite3", "VAR_DIR": folder, "DJANGO_SETTINGS_MODULE": "config.settings"})
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.conf import settings
    from django.test import Client, override_settings
    from django.test.utils import setup_test_environment

    from migrator.models import Transfer

    setup_test_environment()
    # Pages name the static files without a collectstatic here (as in the
    # tests): what is measured is the server's work for the page itself.
    override_settings(STORAGES={**settings.STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}).enable()
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    Transfer.objects.bulk_create(rows(args.rows), batch_size=2000)
    print(f"{args.rows:,} rows bulk-created in {time.perf_counter() - started:.1f} s ({folder})")
    user = User.objects.create_superuser("bench", "bench@example.test", "bench")
    client = Client()
    client.force_login(user)

    print(f"{'page':<16} {'median ms':>10} {'queries':>8}")
    for name, url in PAGES:
        milliseconds, queries = measure(client, url, args.repeat)
        print(f"{name:<16} {milliseconds:>10.0f} {queries:>8}")


if __name__ == "__main__":
    main()
