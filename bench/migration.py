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
rate at which every core would be busy all the time. The share of it a run
used is given for the whole command and for its batches alone (without the
command's start and summary, their time and their CPU: they cost the same
whatever the corpus, and at scale 1 a kind without a blob migrates in 20 s).

--kind KIND times ``backfill KIND`` instead (moods, kidlisp, pieces, tapes,
news; several with commas, or all, in turn on one corpus, the painting
first), with nothing else migrated before the first, and prints per record
migrated: the rate, the CPU of the console, the PDS and MongoDB, the PDS
requests, how much of the run the PDS's one JavaScript thread had a core,
waited for one, waited on the disk (sampled) or waited for requests, and how
much of the machine other processes took; beside it
the plan's method for that kind, one createRecord at a time (a tape's MP4
uploaded first) with the same 100 ms pause, and the ratio.

    .venv/bin/python bench/migration.py [--kind paintings] [--scale 1.0] [--naive 60] [--workers N]
                                        [--together] [--postgres] [--rate-limits | --bypass] [--cold] [--latency]
                                        [--profile FILE]

--together runs the named kinds (several, or all but the painting and the
tape: the kinds without a blob) in one ``backfill all`` instead of in turn,
as a first production run would: each account's records of all of them are
written together. Every kind's report gives the commits the PDS made per
record (counted in its own sequencer, so the same count whatever code runs).

--postgres keeps the state table in a throwaway database of the local
PostgreSQL (127.0.0.1:5432), as production does, instead of SQLite, and
counts its CPU (the postmaster and every backend) beside the others'.

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
--profile samples the backfill and its workers with py-spy into FILE
and prints where their CPU went (bench/pyspy_top.py); the sampler's own CPU is
then counted in the migration's, so take CPU figures from a run without it.
"""

import argparse
import contextlib
import json
import multiprocessing
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _support import ROOT, Run, ThreadStates, cpu_seconds, free_port, local_mongo, machine_cpu_seconds, manage, postgres_cpu_seconds, proc_stat, thread_schedstat  # noqa: E402
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


@dataclass(frozen=True)
class Naive:
    """What the plan's method did: records written, its wall time, its own
    CPU and the PDS's meanwhile."""

    done: int
    seconds: float
    cpu_seconds: float
    pds_cpu_seconds: float

    @property
    def per_minute(self) -> float:
        return self.done / self.seconds * 60


def naive(env: dict[str, str], count: int, *, kind_name: str = "painting", pds_pid: int | None = None) -> Naive:
    """The plan's method, one record at a time, as its backfill script
    would run it (with the session reused, as its plan asks): the kind's
    blob, if it has one, made (a painting's image fetched and thumbnailed, a
    tape's MP4 fetched) and uploaded, then createRecord, then a 100 ms pause.
    Run it with ``naive_apart``."""
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings

    from migrator import pds
    from migrator.images import ImageError
    from migrator.kinds import kind_for
    from migrator.models import Transfer, Status
    from migrator.thumbnails import ThumbnailError
    from migrator.tid import tid_encode

    kind = kind_for(kind_name)
    did, _ = pds.account_ensure(handle="naive-bench" + settings.PDS_HANDLE_DOMAIN)
    repo = pds.repo_for(did=did)
    # A random sample of the corpus, written into an account of its own.
    rows = Transfer.objects.filter(kind=kind.name, status=Status.MIGRATED).order_by("?")[:count]
    pds_before = cpu_seconds(pds_pid) if pds_pid else 0.0
    started, cpu_started, done = time.monotonic(), time.process_time(), 0
    for number, row in enumerate(rows):
        blob = None
        if kind.blob_make:
            try:
                made = kind.blob_make(row)
            except (ImageError, ThumbnailError):
                continue
            blob = repo.blob_upload(made.content, mime_type=made.mime_type)
        record = kind.record_from_row(row, has_recording=False, blob=blob)
        repo.record_create(collection=kind.nsid, rkey=tid_encode(micros=int(time.time() * 1e6), clock_id=number % 1024), record=record)
        done += 1
        time.sleep(0.1)
    seconds, cpu = time.monotonic() - started, time.process_time() - cpu_started
    return Naive(done, seconds, cpu, (cpu_seconds(pds_pid) - pds_before) if pds_pid else 0.0)


def naive_apart(env: dict[str, str], count: int, *, kind_name: str = "painting", pds_pid: int | None = None) -> Naive:
    """``naive`` in a fresh process: Django never loads in this one, whose
    size every later child's peak RSS would start from."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(naive, (env, count), {"kind_name": kind_name, "pds_pid": pds_pid})


def naive_sum(runs: list[Naive]) -> Naive:
    """The plan's method over several kinds, one after the other."""
    return Naive(*(sum(getattr(run, name) for run in runs) for name in ("done", "seconds", "cpu_seconds", "pds_cpu_seconds")))


PAINTINGS = "paintings"  # the kind whose benchmark prints what it always has


@dataclass(frozen=True)
class Kind:
    """A kind of record as migrator.kinds declares it (read in a child
    process: Django is not loaded in this one)."""

    name: str  # "mood"
    plural: str  # what the commands take: "moods"
    collection: str  # its MongoDB collection
    blob: str  # the record's blob field, "" when it has none

    @property
    def commands(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(seed, backfill): for paintings the plan's own commands, which the
        painting benchmark has always timed."""
        if self.plural == PAINTINGS:
            return ("seed_paintings",), ("backfill_paintings",)
        if self.plural == TOGETHER:  # each kind named was seeded on its own: all means them
            return (), ("backfill", "all")
        return ("seed", self.plural), ("backfill", self.plural)


TOGETHER = "documents"  # several kinds in one run, as `backfill all` names them


def together(kinds: list[Kind]) -> Kind:
    """The kinds named, migrated in one run."""
    return Kind(name="+".join(kind.name for kind in kinds), plural=TOGETHER, collection="", blob=",".join(kind.blob for kind in kinds if kind.blob))


def pds_commits(data_dir: str) -> int:
    """Commits the PDS has made to its repositories so far: its sequencer's
    events of a commit ("append"), one per applyWrites, createRecord,
    putRecord or deleteRecord, whatever number of records it holds."""
    with sqlite3.connect(f"file:{data_dir}/sequencer.sqlite?mode=ro", uri=True) as database:
        return database.execute("SELECT count(*) FROM repo_seq WHERE eventType = 'append'").fetchone()[0]


def kinds_declared(env: dict[str, str]) -> list[Kind]:
    """Every kind migrator.kinds declares, the painting first."""
    code = ("import json; from migrator.kinds import KINDS; "
            "print(json.dumps([[k.name, k.plural, k.mongodb_collection, k.blob_field or ''] for k in KINDS.values()]))")  # fmt: skip
    return [Kind(*fields) for fields in json.loads(manage("shell", "-c", code, env=env).output.strip().splitlines()[-1])]


@dataclass(frozen=True)
class Summary:
    """What a backfill run's summary says."""

    text: str  # from "Finished" on
    seconds: float  # the batches' own time, as the command measures it (no start-up, no summary)
    total: int  # documents handled: migrated, skipped, failed, waiting
    migrated: int
    failed: int
    waiting: int
    requests: int
    logins: int
    workers: int

    @classmethod
    def of(cls, output: str, plural: str) -> "Summary":
        text = output[output.index("Finished") :]
        requests, logins = map(int, re.search(r"PDS requests: (\d+); logins: (\d+)", text).groups())
        return cls(
            text=text, seconds=float(re.search(r"Finished in ([\d.]+)s", text)[1]),
            total=int(re.search(rf"Finished in [\d.]+s: (\d+) {plural}", text)[1]),
            migrated=int(re.search(r"migrated: (\d+)", text)[1]), failed=int(re.search(r"failed: +(\d+)", text)[1]),
            waiting=int(re.search(r"waiting for a PDS rate limit: (\d+)", text)[1]), requests=requests, logins=logins,
            workers=int(re.search(r"on (\d+) workers?", output)[1]),
        )  # fmt: skip


@dataclass(frozen=True)
class Measured:
    """One timed backfill: the run, its summary, and the CPU each process
    used meanwhile ("migration": the command and its workers)."""

    run: Run
    summary: Summary
    cpu: dict[str, float]
    pds_thread: tuple[float, float]  # the PDS's one JavaScript thread: (seconds on a core, seconds waiting for one)
    pds_disk: float  # the share of the run that thread was seen waiting on the disk (sampled)
    machine_cpu: float  # CPU seconds every process on the machine used, this benchmark's and others'
    commits: int  # commits the PDS made to repositories meanwhile


def service_cpu(pid: int | str) -> float:
    """CPU time a service has used so far: a process, or ("postgres:PID")
    PostgreSQL's postmaster and every backend it started."""
    if isinstance(pid, str):
        return postgres_cpu_seconds(int(pid.removeprefix("postgres:")))
    return cpu_seconds(pid)


@contextlib.contextmanager
def postgres_database():
    """A throwaway database on the local PostgreSQL (127.0.0.1:5432, user
    postgres, trust); yields its URL and the postmaster's id."""
    import psycopg

    name = f"bench_{os.urandom(4).hex()}"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        backend = admin.execute("SELECT pg_backend_pid()").fetchone()[0]
        postmaster = int(proc_stat(backend)[1])  # its parent
        try:
            yield f"postgres://postgres@127.0.0.1:5432/{name}", postmaster
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def backfill_measured(
    kind: Kind, *, env: dict[str, str], services: dict[str, int | str], workers: int | None, profile: Path | None, pds_data: str
) -> Measured:
    cpu_before = {name: service_cpu(pid) for name, pid in services.items()}
    thread_before, machine_before, commits_before = thread_schedstat(services["PDS"]), machine_cpu_seconds(), pds_commits(pds_data)
    options = [f"--workers={workers}"] if workers else []
    with ThreadStates(services["PDS"]) as pds_states:
        run = manage(*kind.commands[1], "--no-seed", *options, env=env, profile=profile)
    cpu = {"migration": run.cpu_seconds, **{name: service_cpu(pid) - cpu_before[name] for name, pid in services.items()}}
    pds_thread = tuple(after - before for after, before in zip(thread_schedstat(services["PDS"]), thread_before, strict=True))
    summary = Summary.of(run.output, kind.plural)
    return Measured(
        run, summary, cpu, pds_thread, pds_states.share("D"), machine_cpu_seconds() - machine_before, pds_commits(pds_data) - commits_before
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", default=PAINTINGS, help="What to migrate: paintings (the default), moods, kidlisp, pieces, tapes, news, several with commas, or all (each in turn).")
    parser.add_argument("--scale", type=float, default=1.0, help="Corpus scale (1.0 = 3,903 paintings, 2,730 moods, ...).")
    parser.add_argument("--naive", type=int, default=60, help="Records the naive method writes per kind (0 to skip).")
    parser.add_argument("--workers", type=int, help="Passed to backfill (default: its own, cores + 1).")
    parser.add_argument("--postgres", action="store_true", help="The state table on the local PostgreSQL (127.0.0.1:5432), as in production, its CPU counted; default SQLite.")
    parser.add_argument("--together", action="store_true", help="Migrate the kinds named in one `backfill all`, not in turn (not with paintings or tapes).")
    limits = parser.add_mutually_exclusive_group()
    limits.add_argument("--rate-limits", action="store_true", help="The PDS's production rate limits, no bypass key; a restart stands in for each next day (paintings only).")
    limits.add_argument("--bypass", action="store_true", help="Production rate limits, with the operator's bypass key set.")
    parser.add_argument("--cold", action="store_true", help="No stored sessions: every account logs in once.")
    parser.add_argument("--latency", action="store_true", help="Production-like round trips: PDS 50 ms, images 100 ms, MongoDB 20 ms.")
    parser.add_argument("--profile", type=Path, help="Sample the backfill with py-spy into this file and print its top lines (with --kind all, one file per kind).")
    args = parser.parse_args()
    if args.rate_limits and args.kind != PAINTINGS:
        parser.error("--rate-limits measures the days the painting's uploadBlob budget takes: it runs with --kind paintings only.")
    if args.rate_limits:
        args.naive = 0  # the naive method would meet the same daily limit: its rate means nothing there

    with contextlib.ExitStack() as stack:
        mongodb_uri, mongo_pid = stack.enter_context(local_mongo())
        folder = stack.enter_context(tempfile.TemporaryDirectory())
        database_url, postmaster = stack.enter_context(postgres_database()) if args.postgres else (f"sqlite:///{folder}/bench.sqlite3", None)
        run_benchmark(args, parser, mongodb_uri, mongo_pid, folder, database_url, postmaster)


def run_benchmark(args, parser, mongodb_uri: str, mongo_pid: int, folder: str, database_url: str, postmaster: int | None) -> None:
    images_port, pds_port = free_port(), free_port()
    admin_password = os.urandom(12).hex()
    env = {
        "MONGODB_URI": mongodb_uri,
        "DATABASE_URL": database_url,
        "VAR_DIR": folder,
        "USER_MEDIA_URL": f"http://127.0.0.1:{images_port}/media",
        "GUEST_MEDIA_URL": f"http://127.0.0.1:{images_port}/guest",
        "TAPE_MEDIA_URL": f"http://127.0.0.1:{images_port}/tapes",
        "PDS_URL": f"http://127.0.0.1:{pds_port}",
        "PDS_ADMIN_PASSWORD": admin_password,
        "ANON_HANDLE": "anon-paintings.test",
    }
    declared = kinds_declared(env)
    named = [name.strip() for name in args.kind.split(",")]
    unknown = [name for name in named if name != "all" and not any(name in (kind.name, kind.plural) for kind in declared)]
    if unknown:
        parser.error(f"--kind {', '.join(unknown)}: there is no such kind; there are {', '.join(kind.plural for kind in declared)} (or all).")
    kinds = [kind for kind in declared if "all" in named or kind.name in named or kind.plural in named]
    if args.together:
        kinds = [kind for kind in kinds if not kind.blob] if "all" in named else kinds
        if len(kinds) < 2 or any(kind.blob for kind in kinds):
            parser.error("--together migrates several kinds without a blob in one run: name two or more of them (or all).")
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
        for kind in kinds:
            if kind.plural != PAINTINGS:  # the painting's line is the first
                print(next(line for line in made.output.splitlines() if line.startswith("Wrote ") and f" {kind.collection} (" in line))
        manage("create_sample_accounts", env=env)
        manage("create_anon_account", env=env)
        for kind in kinds:
            manage(*kind.commands[0], env=env)
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
        if postmaster:
            services["PostgreSQL"] = f"postgres:{postmaster}"
        runs = [together(kinds)] if args.together else kinds
        for kind in runs:
            profile = args.profile
            if profile and len(runs) > 1:
                profile = profile.with_name(f"{profile.stem}-{kind.plural}{profile.suffix}")
            measured = backfill_measured(kind, env=env, services=services, workers=args.workers, profile=profile, pds_data=f"{folder}/pds")
            plan = None
            if args.naive and kind.plural == TOGETHER:  # each kind's share, one after the other
                plan = naive_sum([naive_apart(env, args.naive // len(kinds), kind_name=one.name, pds_pid=pds.pid) for one in kinds])
            elif args.naive:
                plan = naive_apart(env, args.naive, kind_name=kind.name, pds_pid=pds.pid)
            report = paintings_report if kind.plural == PAINTINGS else kind_report
            report(kind, measured, plan, profile=profile)
    finally:
        images.terminate()
        for process in (pds, *_restarted):
            if process.poll() is None:
                if process.stdin:
                    process.stdin.close()
                process.terminate()
                process.wait(timeout=30)


def paintings_report(kind: Kind, measured: Measured, plan: Naive | None, *, profile: Path | None) -> None:
    """The painting benchmark's figures, as it has always printed them:
    per painting handled, with the CPU ceiling and where 10x stands."""
    run, summary, cpu = measured.run, measured.summary, measured.cpu
    total, requests, logins = summary.total, summary.requests, summary.logins
    rate = total / run.seconds * 60
    print(summary.text.rstrip())
    print(f"\nbackfill_paintings --workers {summary.workers}: {total} paintings in {run.seconds:.1f}s wall "
          f"= {rate:,.0f} paintings/min; {logins} logins; {requests} PDS requests; peak RSS {run.peak_rss_mb:.0f} MB")
    print(f"  of which the batches {summary.seconds:.1f}s = {total / max(summary.seconds, 0.1) * 60:,.0f} paintings/min; "
          f"the command's start and summary {run.seconds - summary.seconds:.1f}s")
    print("CPU per painting: " + ", ".join(f"{name} {seconds / total * 1000:.1f} ms" for name, seconds in cpu.items()))
    print(f"PDS commits: {measured.commits} = {measured.commits / max(summary.migrated, 1):.2f} per painting migrated")
    # Every process here shares the machine's cores: the fastest any
    # schedule could go is all cores busy all the time.
    cores = os.cpu_count() or 1
    cpu_per_painting = sum(cpu.values()) / total
    ceiling = cores / cpu_per_painting * 60
    print(f"CPU ceiling: {cores} cores / {cpu_per_painting * 1000:.1f} ms per painting in all = {ceiling:,.0f} paintings/min "
          f"(this run used {rate / ceiling:.0%} of it, its batches alone {batches_share(measured, total, cores):.0%})")
    print(pds_thread_line(measured, cpu, cores))
    if plan:
        naive_rate = plan.per_minute
        print(f"naive method: {plan.done} paintings in {plan.seconds:.1f}s = {naive_rate:,.0f} paintings/min")
        print(f"ratio: {rate / naive_rate:.1f}x (the CPU ceiling is {ceiling / naive_rate:.1f}x; "
              f"10x would need at most {cores / (10 * naive_rate / 60) * 1000:.0f} ms of CPU per painting in all)")
        print(ten_times(cpu, total=total, cores=cores, naive_rate=naive_rate, used=rate / ceiling))
    profile_report(profile)
    print(json.dumps({"paintings": total, "seconds": round(run.seconds, 1), "per_minute": round(rate), "logins": logins,
                      "pds_requests": requests, "pds_commits": measured.commits, "peak_rss_mb": round(run.peak_rss_mb)}))


def batches_share(measured: Measured, records: int, cores: int) -> float:
    """The share of the cores' ceiling the batches alone used: their rate
    against the ceiling the CPU they spent sets. That CPU is the run's less
    the command's start and summary, during which its one process runs on
    one core and nothing else works (the migration's CPU then is counted as
    that wall time, at most)."""
    run, summary = measured.run, measured.summary
    outside = min(max(run.seconds - summary.seconds, 0.0), measured.cpu["migration"])
    per_record = (sum(measured.cpu.values()) - outside) / max(records, 1)
    rate = records / max(summary.seconds, 0.1) * 60
    return rate / (cores / per_record * 60) if per_record > 0 else 0.0


def pds_thread_line(measured: Measured, cpu: dict[str, float], cores: int) -> str:
    """How much of the run the PDS's one JavaScript thread had a core,
    waited for one, or waited on the disk (when it always does one of
    these, the PDS holds the rate; the rest it waited for requests), and
    how busy the machine was, with other processes' share."""
    seconds = measured.run.seconds
    on_core, waiting = measured.pds_thread
    others = measured.machine_cpu - sum(cpu.values())
    names = ", ".join("console" if name == "migration" else name for name in cpu)
    idle = max(1 - (on_core + waiting) / seconds - measured.pds_disk, 0)
    return (f"PDS thread: on a core {on_core / seconds:.0%} of the wall time, waiting for one {waiting / seconds:.0%}, "
            f"on the disk {measured.pds_disk:.0%}, for requests {idle:.0%}; "
            f"the machine's cores were {measured.machine_cpu / (cores * seconds):.0%} busy, "
            f"{max(others, 0) / (cores * seconds):.0%} with processes other than the {names}")


def kind_report(kind: Kind, measured: Measured, plan: Naive | None, *, profile: Path | None) -> None:
    """A kind's figures, per record migrated (what reaches the PDS): its
    rate, the CPU of the console, the PDS and MongoDB, the requests, how
    much of the wall time the PDS's one thread had a core, waited for
    one or for the disk, and how much of the machine other processes took
    meanwhile."""
    run, summary, cpu = measured.run, measured.summary, measured.cpu
    records = max(summary.migrated, 1)
    rate = summary.migrated / run.seconds * 60
    print(summary.text.rstrip())
    command = f"all ({kind.name.replace('+', ', ')} together)" if kind.plural == TOGETHER else kind.plural
    print(f"\nbackfill {command} --workers {summary.workers}: {summary.migrated} records migrated ({summary.total} {kind.plural} handled) "
          f"in {run.seconds:.1f}s wall = {rate:,.0f} records/min; {summary.logins} logins; {summary.requests} PDS requests "
          f"({summary.requests / records:.2f} per record); {measured.commits} PDS commits ({measured.commits / records:.2f} per record); "
          f"peak RSS {run.peak_rss_mb:.0f} MB")
    print(f"  of which the batches {summary.seconds:.1f}s = {summary.migrated / max(summary.seconds, 0.1) * 60:,.0f} records/min; "
          f"the command's start and summary {run.seconds - summary.seconds:.1f}s")
    shown = {"console" if name == "migration" else name: seconds for name, seconds in cpu.items()}
    print("CPU per record: " + ", ".join(f"{name} {seconds / records * 1000:.2f} ms" for name, seconds in shown.items()))
    cores = os.cpu_count() or 1
    ceiling = cores / (sum(cpu.values()) / records) * 60
    pds_ms = cpu["PDS"] / records * 1000
    batches = batches_share(measured, records, cores)
    print(f"CPU ceiling: {cores} cores / {sum(cpu.values()) / records * 1000:.2f} ms per record in all = {ceiling:,.0f} records/min "
          f"(this run used {rate / ceiling:.0%} of it, its batches alone {batches:.0%}); "
          f"the PDS on a core of its own: {60_000 / pds_ms if pds_ms else 0:,.0f} records/min")
    print(pds_thread_line(measured, cpu, cores))
    on_core, waiting = measured.pds_thread
    others = measured.machine_cpu - sum(cpu.values())
    figures = {"kind": kind.plural, "records": summary.migrated, "handled": summary.total, "failed": summary.failed,
               "seconds": round(run.seconds, 1), "per_minute": round(rate), "share": round(rate / ceiling, 3),
               "batches_share": round(batches, 3), "logins": summary.logins, "pds_requests": summary.requests,
               "pds_commits": measured.commits, "commits_per_record": round(measured.commits / records, 3), "peak_rss_mb": round(run.peak_rss_mb), **{f"{name.replace(' ', '_')}_cpu_ms": round(seconds / records * 1000, 2) for name, seconds in shown.items()},
               "pds_thread_on_core": round(on_core / run.seconds, 2), "pds_thread_waiting": round(waiting / run.seconds, 2),
               "pds_thread_disk": round(measured.pds_disk, 2),
               "others_share": round(max(others, 0) / (cores * run.seconds), 2)}  # fmt: skip
    if plan:
        method = f"upload the {kind.blob}, then createRecord" if kind.blob else "createRecord"
        print(f"naive method ({method}, one record at a time, 100 ms pause): {plan.done} records in {plan.seconds:.1f}s "
              f"= {plan.per_minute:,.0f} records/min; CPU per record: its own {plan.cpu_seconds / max(plan.done, 1) * 1000:.2f} ms, "
              f"PDS {plan.pds_cpu_seconds / max(plan.done, 1) * 1000:.2f} ms")
        print(f"ratio: {rate / plan.per_minute:.1f}x")
        figures.update(naive_per_minute=round(plan.per_minute), naive_cpu_ms=round(plan.cpu_seconds / max(plan.done, 1) * 1000, 2),
                       naive_pds_cpu_ms=round(plan.pds_cpu_seconds / max(plan.done, 1) * 1000, 2), ratio=round(rate / plan.per_minute, 1))
    profile_report(profile)
    print(json.dumps(figures))


def profile_report(profile: Path | None) -> None:
    if profile:
        print(f"\nprofile ({profile}), share of the samples in each function and what it calls:")
        print("\n".join(top_lines(profile, 25)))


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
        summary = Summary.of(run.output, PAINTINGS)
        migrated, failed, waiting, requests, logins = summary.migrated, summary.failed, summary.waiting, summary.requests, summary.logins
        migrated_in_all, requests_in_all, failed_in_all = migrated_in_all + migrated, requests_in_all + requests, failed_in_all + failed
        print(f"day {day}: {migrated} migrated, {failed} failed, {waiting} waiting, {requests} PDS requests, {logins} logins, {run.seconds:.1f}s")
        limit_lines = [line for line in summary.text.splitlines() if " wait for " in line]
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
