"""migrator.tls: one TLS context per process, however its threads arrive."""

import ssl
import threading
import time

import pytest

from migrator import tls


def test_threads_that_open_their_first_connections_at_once_share_one_context(monkeypatch):
    """A worker's thumbnail threads each open an image connection as the
    first batch starts. The CA bundle is slow to load (stood in for here by
    a pause, so that the threads are certain to overlap): it is loaded once,
    not once per thread."""
    monkeypatch.setattr(tls, "_context", None)
    built, real = [], ssl.create_default_context

    def slow_context(**options):
        built.append(options)
        time.sleep(0.05)
        return real(**options)

    monkeypatch.setattr(tls.ssl, "create_default_context", slow_context)
    start = threading.Barrier(8)
    contexts = []

    def first_connection():
        start.wait()
        contexts.append(tls.tls_context())

    threads = [threading.Thread(target=first_connection) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(built) == 1
    assert len(contexts) == 8 and all(context is contexts[0] for context in contexts)
    assert contexts[0].verify_mode == ssl.CERT_REQUIRED and contexts[0].check_hostname


HOOK = """
import os
import ssl

_real = ssl.create_default_context


def _counted(*args, **options):
    with open({built!r}, "a") as file:
        file.write(f"{{os.getpid()}}\\n")
    return _real(*args, **options)


ssl.create_default_context = _counted
"""


@pytest.mark.pds
@pytest.mark.django_db
def test_backfills_workers_inherit_the_context_its_parent_built(world, console, tmp_path):
    """Counted in the real command's processes by a ``sitecustomize`` that
    wraps ``ssl.create_default_context`` (each process writes its pid)."""
    built = tmp_path / "built"
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOOK.format(built=str(built)))
    names = list(world.users)
    refs = [world.add_painting(handle=names[number % 2]) for number in range(6)]
    console.env.update(PYTHONPATH=str(hook), MIGRATION_BATCH_SIZE="1")

    output = console.run("backfill_paintings", "--workers", "2").stdout

    assert f"migrated: {len(refs)}" in output
    assert len(built.read_text().split()) == 1  # in the parent, before the workers forked
