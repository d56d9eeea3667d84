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
                                        [--rate-limits | --bypass] [--cold] [--latency]
                                        [--profile FILE]

--rate-limits runs against the PDS's production rate limits with no bypass
key: the run stops when this IP's 1,000 uploadBlob a day are spent, with the
rest waiting; the PDS is then restarted on the same data folder (its
in-memory limiter starts afresh: the next day) and backfill_paintings is run
again, day after day, until nothing is left; it prints each day and the PDS
requests spent per painting migrated. --bypass runs with production limits
and the operator's bypass key set on both sides. --cold drops the sessions
that creating the accounts left, so every account logs in once (978 logins
at scale 1.0), as a first production run would. --latency puts
bench/latency_proxy.py in front of each service (PDS 50 ms, images 100 ms,
MongoDB 20 ms a round trip) for the console and the naive method alike.
--profile samples backfill_paintings and its workers with py-spy into FILE
and prints where their CPU went (bench/pyspy_top.py); the sampler's own CPU is
then counted in the migration's, so take CPU figures from a run without it.
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
from pyspy_top import top_lines  # noqa: E402


def start_images(port: int) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, str(ROOT / "bin" / "local-images"), "--port", str(port)], stdout=subprocess.PIPE, text=True)
    process.stdout.readline()
    return process


def start_pds(port: int, data_dir: str, admin_password: str, *, rate_limits: bool = False, bypass_key: str = "") -> subprocess.Popen:
    limits = ["--rate-limits", "on"] if rate_limits or bypass_key else []
    process = subprocess.Popen(
        [str(ROOT / "bin" / "local-pds"), "--port", str(port), "--data-dir", data_dir, "--admin-password", admin_password, *limits],
        env={**os.environ, "PDS_RATE_LIMIT_BYPASS_KEY": bypass_key} if bypass_key else None,
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
    limits = parser.add_mutually_exclusive_group()
    limits.add_argument("--rate-limits", action="store_true", help="The PDS's production rate limits, no bypass key; a restart stands in for each next day.")
    limits.add_argument("--bypass", action="store_true", help="Production rate limits, with the operator's bypass key set.")
    parser.add_argument("--cold", action="store_true", help="No stored sessions: every account logs in once.")
    parser.add_argument("--latency", action="store_true", help="Production-like round trips: PDS 50 ms, images 100 ms, MongoDB 20 ms.")
    parser.add_argument("--profile", type=Path, help="Sample backfill_paintings with py-spy into this file and print its top lines.")
    args = parser.parse_args()
    if args.rate_limits:
        args.naive = 0  # the naive method would meet the same daily limit: its rate means nothing there

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
        bypass_key = os.urandom(16).hex() if args.bypass else ""
        if bypass_key:
            env["PDS_RATE_LIMIT_BYPASS_KEY"] = bypass_key
        images = start_images(images_port)
        # With --rate-limits the accounts are made first, limits off (createAccount allows 100 per 5 minutes).
        pds = start_pds(pds_port, f"{folder}/pds", admin_password, bypass_key=bypass_key)
        try:
            manage("migrate", "-v0", env=env)
            made = manage("make_sample_data", f"--scale={args.scale}", env=env)
            print(made.output.splitlines()[0])
            manage("create_sample_accounts", env=env)
            manage("create_anon_account", env=env)
            manage("seed_paintings", env=env)
            if args.cold:
                manage("shell", "-c", "from migrator.models import Account; print(Account.objects.filter(is_anonymous=False).update(session=''))", env=env)
            if args.rate_limits:
                pds.stdin.close(); pds.terminate(); pds.wait(timeout=30)
                pds = start_pds(pds_port, f"{folder}/pds", admin_password, rate_limits=True)
                return days(env, pds_port, f"{folder}/pds", admin_password, workers=args.workers, pds=pds)
            if args.latency:
                env = {**env, **with_latency(env)}
                print("latency: PDS 50 ms, images 100 ms, MongoDB 20 ms a round trip (bench/latency_proxy.py)")
            services = {"PDS": pds.pid, "image server": images.pid, "MongoDB": mongo_pid}
            cpu_before = {name: cpu_seconds(pid) for name, pid in services.items()}
            workers = [f"--workers={args.workers}"] if args.workers else []
            run = manage("backfill_paintings", "--no-seed", *workers, env=env, profile=args.profile)
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
                print(ten_times(cpu, total=total, cores=cores, naive_rate=naive_rate, used=rate / ceiling))
            if args.profile:
                print(f"\nprofile ({args.profile}), share of the samples in each function and what it calls:")
                print("\n".join(top_lines(args.profile, 25)))
            print(json.dumps({"paintings": total, "seconds": round(run.seconds, 1), "per_minute": round(rate), "logins": logins,
                              "pds_requests": requests, "peak_rss_mb": round(run.peak_rss_mb)}))
        finally:
            images.terminate()
            for process in (pds, *_restarted):
                if process.poll() is None:
                    if process.stdin:
                        process.stdin.close()
                    process.terminate()
                    process.wait(timeout=30)


def ten_times(cpu: dict[str, float], *, total: int, cores: int, naive_rate: float, used: float) -> str:
    """Where 10x the naive method stands: the CPU per painting it allows at
    this run's use of the cores, and which process holds the milliseconds
    over it."""
    allowed = cores * used / (10 * naive_rate / 60) * 1000
    spent = {name: seconds / total * 1000 for name, seconds in cpu.items()}
    over = sum(spent.values()) - allowed
    if used < 0.6:  # the workers mostly waited: CPU is not what holds the rate
        return (f"10x: the run waited more than it computed (it used {used:.0%} of the cores): more workers "
                f"(--workers) overlap more round trips; 10x is {10 * naive_rate:,.0f} paintings/min.")
    if over <= 0:
        return f"10x: within reach, {-over:.1f} ms of CPU per painting to spare at this run's {used:.0%} use of the cores."
    shares = ", ".join(f"{name} {ms:.1f} ms ({ms / sum(spent.values()):.0%})" for name, ms in sorted(spent.items(), key=lambda item: -item[1]))
    return (f"10x: out of reach by {over:.1f} ms of CPU per painting: at this run's {used:.0%} use of the cores it allows "
            f"{allowed:.1f} ms in all, and the run spent {shares}.")


_restarted: list = []
LATENCY_MS = {"PDS_URL": 50, "USER_MEDIA_URL": 100, "MONGODB_URI": 20}


def with_latency(env: dict) -> dict:
    """``env`` with each service reached through a delaying proxy."""
    changed = {}
    for name, delay in LATENCY_MS.items():
        match = re.search(r"127\.0\.0\.1:(\d+)", env[name])
        proxy = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "latency_proxy.py"), "--target", f"127.0.0.1:{match[1]}", "--delay-ms", str(delay)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        _restarted.append(proxy)
        port = json.loads(proxy.stdout.readline())["port"]
        changed[name] = env[name].replace(match[0], f"127.0.0.1:{port}")
        if name == "USER_MEDIA_URL":
            changed["GUEST_MEDIA_URL"] = env["GUEST_MEDIA_URL"].replace(match[0], f"127.0.0.1:{port}")
    if "directConnection" not in changed["MONGODB_URI"]:  # the server names its own address: stay on the proxy
        changed["MONGODB_URI"] += ("&" if "?" in changed["MONGODB_URI"] else "?") + "directConnection=true"
    return changed


def days(env: dict, port: int, data_dir: str, admin_password: str, *, workers: int | None, pds) -> None:
    """backfill_paintings against the production limits, one run a day, a
    PDS restart standing in for each night, until nothing is left."""
    options = [f"--workers={workers}"] if workers else []
    migrated_in_all = requests_in_all = failed_in_all = 0
    started = time.monotonic()
    for day in range(1, 30):
        run = manage("backfill_paintings", "--no-seed", *options, env=env)
        summary = run.output[run.output.index("Finished") :]
        migrated = int(re.search(r"migrated: (\d+)", summary)[1])
        failed = int(re.search(r"failed: +(\d+)", summary)[1])
        waiting = int(re.search(r"waiting for a PDS rate limit: (\d+)", summary)[1])
        requests, logins = map(int, re.search(r"PDS requests: (\d+); logins: (\d+)", summary).groups())
        migrated_in_all, requests_in_all, failed_in_all = migrated_in_all + migrated, requests_in_all + requests, failed_in_all + failed
        print(f"day {day}: {migrated} migrated, {failed} failed, {waiting} waiting, {requests} PDS requests, {logins} logins, {run.seconds:.1f}s")
        limit_lines = [line for line in summary.splitlines() if " wait for " in line]
        if day == 1 and limit_lines:
            print("  " + limit_lines[0])
        if not waiting:
            break
        pds.stdin.close(); pds.terminate(); pds.wait(timeout=30)
        pds = start_pds(port, data_dir, admin_password, rate_limits=True)
        _restarted.append(pds)
    compare = manage("compare_paintings", env=env, check=False)  # exits 1 when it finds differences
    print(compare.output.strip().splitlines()[-1])
    print(f"in all: {migrated_in_all} migrated, {failed_in_all} failed, {requests_in_all} PDS requests = "
          f"{requests_in_all / max(migrated_in_all, 1):.2f} per painting migrated, {time.monotonic() - started:.0f}s of runs")


if __name__ == "__main__":
    main()
