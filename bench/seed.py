#!/usr/bin/env python
"""Benchmark seeding: peak memory and time of ``seed_paintings`` as the
corpus grows (memory must stay flat: the command works in batches).

    .venv/bin/python bench/seed.py [--scales 1,10,25.6]

Uses a throwaway in-memory MongoDB wire-protocol server (bin/local-mongo) and a
SQLite database, so it touches nothing of yours.
"""

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _support import local_mongo, manage  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", default="1,25.6", help="Corpus scales to seed (25.6 = 100,000 paintings).")
    args = parser.parse_args()

    print(f"{'paintings':>10} {'first seed':>11} {'peak RSS':>9} {'re-seed':>8} {'peak RSS':>9}")
    with local_mongo() as (mongodb_uri, _), tempfile.TemporaryDirectory() as folder:
        for number, scale in enumerate(float(value) for value in args.scales.split(",")):
            env = {
                "MONGODB_URI": mongodb_uri,
                "MONGODB_DB": f"bench_{number}",
                "DATABASE_URL": f"sqlite:///{folder}/seed_{number}.sqlite3",
                "VAR_DIR": folder,
            }
            manage("migrate", "-v0", env=env)
            manage("make_sample_data", f"--scale={scale}", "--no-images", env=env)
            first = manage("seed_paintings", env=env)
            again = manage("seed_paintings", env=env)
            seen = next(line for line in first.output.splitlines() if line.startswith("Seeded")).split()[1]
            print(
                f"{seen:>10} {first.seconds:>10.1f}s {first.peak_rss_mb:>7.0f}MB {again.seconds:>7.1f}s {again.peak_rss_mb:>7.0f}MB",
                flush=True,
            )


if __name__ == "__main__":
    main()
