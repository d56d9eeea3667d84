"""Batches are background work: the processes that run them (backfill's
workers, django-q2's) lower their CPU priority to WORKER_NICENESS, and the
threads they start (the thumbnails') inherit it. Each case runs in a forked
child, since a process cannot raise its priority back."""

import multiprocessing
import os
import threading

import pytest
from django_q.signals import post_spawn

from migrator.management.commands import backfill
from migrator.services import engine


def in_a_child(start) -> tuple[int, int]:
    """(the child's niceness, a thread's it starts after) once ``start`` ran
    in a forked child of this process."""
    parent_end, child_end = multiprocessing.Pipe()

    def child():
        start()
        seen = []
        thread = threading.Thread(target=lambda: seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
        thread.start()
        thread.join()
        child_end.send((os.getpriority(os.PRIO_PROCESS, 0), seen[0]))

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join(timeout=30)
    assert process.exitcode == 0
    return parent_end.recv()


@pytest.fixture
def niceness():
    """This process's niceness; the cases set WORKER_NICENESS above it."""
    return os.getpriority(os.PRIO_PROCESS, 0)


def test_a_backfill_worker_runs_its_batches_and_their_threads_at_the_configured_niceness(settings, niceness):
    settings.WORKER_NICENESS = niceness + 7
    assert in_a_child(backfill._worker_start) == (niceness + 7, niceness + 7)


def test_a_cluster_worker_lowers_its_priority_as_it_starts(settings, niceness):
    settings.WORKER_NICENESS = niceness + 5
    assert in_a_child(lambda: post_spawn.send(sender="django_q", proc_name="Process-1:1")) == (niceness + 5, niceness + 5)


def test_the_priority_is_never_raised_and_zero_leaves_it_alone(settings, niceness):
    def lower_then_ask_for_less():
        settings.WORKER_NICENESS = niceness + 6
        engine.priority_lower()
        settings.WORKER_NICENESS = niceness + 2
        engine.priority_lower()

    assert in_a_child(lower_then_ask_for_less) == (niceness + 6, niceness + 6)
    settings.WORKER_NICENESS = 0
    assert in_a_child(engine.priority_lower) == (niceness, niceness)
