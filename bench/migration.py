#!/usr/bin/env python
"""Benchmark the whole migration, end to end, on this machine.

Starts a throwaway MongoDB wire-protocol server, the image server and the
reference PDS (all on 127.0.0.1, in their own processes), writes the sample
corpus, creates its accounts, then times ``backfill_paintings`` over all of
it and prints: wall time, paintings per minute, logins, PDS requests and the
peak RSS of the migrating processes. In the same run it times the plan's
naive method on a subset (one painting at a time: fetch, thumbnail, upload,
createRecord, 100 ms pause) into an account of its own, and prints the ratio,
with the CPU each process used per painting and the ceiling that sets: the
rate at which every core would be busy all the time.

    .venv/bin/python bench/migration.py [--scale 1.0] [--naive 60] [--workers N]
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _support import ROOT, cpu_seconds, free_port, local_mongo, manage  # noqa: E402


def start_images(port: int) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, str(ROOT / "bin" / "local-images"), "--port", str(port)], stdout=subprocess.PIPE, text=True)
    process.stdout.readline()
    return process


def start_pds(port: int, data_dir: str, admin_password: str) -> subprocess.Popen:
    process = subprocess.Popen(
        [str(ROOT / "bin" / "local-pds"), "--port", str(port), "--data-dir", data_dir, "--admin-password", admin_password],
        stdin=subprocess.PIPE,  # the PDS stops when this closes
        stdout=subprocess.PIPE,
        text=True,
    )
    for line in process.stdout:
        if line.startswith("{"):
            return process
    raise SystemExit("bin/local-pds did not start")


def naive(env: dict[str, str], count: int) -> tuple[int, float]:
    """The plan's method, one painting at a time, as its backfill script
    would run it (with the session reused, as its plan asks)."""
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings

    from migrator import pds
    from migrator.images import ImageError, fetch_image, painting_image_url
    from migrator.models import PaintingMigration, Status
    from migrator.records import painting_record
    from migrator.thumbnails import make_thumbnail
    from migrator.tid import tid_encode

    did, _ = pds.account_ensure(handle="naive-bench" + settings.PDS_HANDLE_DOMAIN)
    repo = pds.repo_for(did=did)
    # A random sample of the corpus, written into an account of its own.
    rows = PaintingMigration.objects.filter(status=Status.MIGRATED).order_by("?")[:count]
    started, done = time.monotonic(), 0
    for number, row in enumerate(rows):
        try:
            content = fetch_image(painting_image_url(handle=row.owner_handle or None, slug=row.slug))
        except ImageError:
            continue
        thumbnail = make_thumbnail(content)
        blob = repo.blob_upload(thumbnail.content, mime_type=thumbnail.mime_type)
        record = painting_record(
            ref=row.ref, slug=row.slug, code=row.code, when=row.when, owner_handle=row.owner_handle or None,
            nuked=row.nuked, has_recording=False, thumbnail=blob,
        )
        repo.record_create(collection=settings.PAINTING_COLLECTION, rkey=tid_encode(micros=int(time.time() * 1e6), clock_id=number % 1024), record=record)
        done += 1
        time.sleep(0.1)
    return done, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="Corpus scale (1.0 = 3,903 paintings).")
    parser.add_argument("--naive", type=int, default=60, help="Paintings the naive method migrates (0 to skip).")
    parser.add_argument("--workers", type=int, help="Passed to backfill_paintings (default: its own, cores + 1).")
    args = parser.parse_args()

    with local_mongo() as (mongodb_uri, mongo_pid), tempfile.TemporaryDirectory() as folder:
        images_port, pds_port = free_port(), free_port()
        admin_password = os.urandom(12).hex()
        env = {
            "MONGODB_URI": mongodb_uri,
            "DATABASE_URL": f"sqlite:///{folder}/bench.sqlite3",
            "VAR_DIR": folder,
            "USER_MEDIA_URL": f"http://127.0.0.1:{images_port}/media",
            "GUEST_MEDIA_URL": f"http://127.0.0.1:{images_port}/guest",
            "PDS_URL": f"http://127.0.0.1:{pds_port}",
            "PDS_ADMIN_PASSWORD": admin_password,
            "ANON_HANDLE": "anon-paintings.test",
        }
        images = start_images(images_port)
        pds = start_pds(pds_port, f"{folder}/pds", admin_password)
        try:
            manage("migrate", "-v0", env=env)
            made = manage("make_sample_data", f"--scale={args.scale}", env=env)
            print(made.output.splitlines()[0])
            manage("create_sample_accounts", env=env)
            manage("create_anon_account", env=env)
            manage("seed_paintings", env=env)
            services = {"PDS": pds.pid, "image server": images.pid, "MongoDB": mongo_pid}
            cpu_before = {name: cpu_seconds(pid) for name, pid in services.items()}
            workers = [f"--workers={args.workers}"] if args.workers else []
            run = manage("backfill_paintings", "--no-seed", *workers, env=env)
            summary = run.output[run.output.index("Finished") :]
            total = int(re.search(r"Finished in [\d.]+s: (\d+) paintings", summary)[1])
            requests, logins = map(int, re.search(r"PDS requests: (\d+); logins: (\d+)", summary).groups())
            rate = total / run.seconds * 60
            print(summary.rstrip())
            used = re.search(r"on (\d+) workers?", run.output)[1]
            print(f"\nbackfill_paintings --workers {used}: {total} paintings in {run.seconds:.1f}s wall "
                  f"= {rate:,.0f} paintings/min; {logins} logins; {requests} PDS requests; peak RSS {run.peak_rss_mb:.0f} MB")
            cpu = {"migration": run.cpu_seconds, **{name: cpu_seconds(pid) - cpu_before[name] for name, pid in services.items()}}
            print("CPU per painting: " + ", ".join(f"{name} {seconds / total * 1000:.1f} ms" for name, seconds in cpu.items()))
            # Every process here shares the machine's cores: the fastest any
            # schedule could go is all cores busy all the time.
            cores = os.cpu_count() or 1
            cpu_per_painting = sum(cpu.values()) / total
            ceiling = cores / cpu_per_painting * 60
            print(f"CPU ceiling: {cores} cores / {cpu_per_painting * 1000:.1f} ms per painting in all = {ceiling:,.0f} paintings/min "
                  f"(this run used {rate / ceiling:.0%} of it)")
            if args.naive:
                done, seconds = naive(env, args.naive)
                naive_rate = done / seconds * 60
                print(f"naive method: {done} paintings in {seconds:.1f}s = {naive_rate:,.0f} paintings/min")
                print(f"ratio: {rate / naive_rate:.1f}x (the CPU ceiling is {ceiling / naive_rate:.1f}x; "
                      f"10x would need at most {cores / (10 * naive_rate / 60) * 1000:.0f} ms of CPU per painting in all)")
            print(json.dumps({"paintings": total, "seconds": round(run.seconds, 1), "per_minute": round(rate), "logins": logins,
                              "pds_requests": requests, "peak_rss_mb": round(run.peak_rss_mb)}))
        finally:
            pds.stdin.close()
            pds.terminate()
            images.terminate()
            pds.wait(timeout=30)


if __name__ == "__main__":
    main()
