"""The replica's worker pool: turns go to the oldest waiting driver, a stopped driver leaves
the queue, and the stats count what waits and what works."""

from __future__ import annotations

import threading

import pytest
from support import HANG_GUARD_SECONDS, wait_until

from tuner.service import WorkerPool


def take_in_thread(pool: WorkerPool, name: str, taken: list[str], stop: threading.Event):
    """A thread that waits for ``name``'s turn, records it, and gives the worker back."""

    def run() -> None:
        if pool.acquire(name, stop.is_set):
            taken.append(name)
            pool.release(name)
        else:
            taken.append(f"{name} stopped")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_turns_go_in_queue_order_not_thread_order() -> None:
    pool = WorkerPool(1)
    for name in ("a", "b", "c", "d"):
        pool.register(name, "default")
    assert pool.acquire("a", lambda: False)
    taken: list[str] = []
    never = threading.Event()
    # Started in reverse: the queue, not the threads' arrival, decides.
    threads = [take_in_thread(pool, n, taken, never) for n in ("d", "c", "b")]
    wait_until(lambda: pool.stats().queued == 3, "three waiters")
    # a idles and queues again: behind b, c and d.
    pool.release("a")
    pool.requeue("a")
    threads.append(take_in_thread(pool, "a", taken, never))
    for thread in threads:
        thread.join(HANG_GUARD_SECONDS)
    assert taken == ["b", "c", "d", "a"]


def test_a_stopped_waiter_leaves_the_queue_and_the_next_one_goes() -> None:
    pool = WorkerPool(1)
    for name in ("a", "b", "c"):
        pool.register(name, "ns")
    assert pool.acquire("a", lambda: False)
    taken: list[str] = []
    stop_b, never = threading.Event(), threading.Event()
    b = take_in_thread(pool, "b", taken, stop_b)
    c = take_in_thread(pool, "c", taken, never)
    wait_until(lambda: pool.stats().queued == 2, "two waiters")
    stop_b.set()
    pool.wake()
    b.join(HANG_GUARD_SECONDS)
    assert taken == ["b stopped"]
    assert pool.stats().queued == 1
    pool.unregister("a")  # gives its worker back
    c.join(HANG_GUARD_SECONDS)
    assert taken == ["b stopped", "c"]


def test_stats_count_workers_queue_and_each_experiments_lag() -> None:
    pool = WorkerPool(2)
    pool.register("x", "team-a")
    pool.register("y", "team-b")
    pool.register("z", "team-b")
    assert pool.acquire("x", lambda: False)
    assert pool.acquire("y", lambda: False)
    stats = pool.stats()
    assert (stats.workers, stats.busy, stats.queued) == (2, 2, 1)
    by_name = {e.name: e for e in stats.experiments}
    assert {n: e.namespace for n, e in by_name.items()} == {
        "x": "team-a",
        "y": "team-b",
        "z": "team-b",
    }
    assert by_name["x"].queued == 0.0
    assert by_name["z"].queued > 0.0  # still waiting
    assert by_name["z"].lag >= by_name["z"].queued
    pool.release("x")
    pool.unregister("y")
    stats = pool.stats()
    assert (stats.busy, stats.queued) == (0, 1)
    assert [e.name for e in stats.experiments] == ["x", "z"]


def test_workers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="workers: 0 is less than 1"):
        WorkerPool(0)


def test_a_stopped_driver_gets_no_turn_even_with_a_worker_free() -> None:
    pool = WorkerPool(1)
    pool.register("a", "default")
    assert not pool.acquire("a", lambda: True)
    assert (pool.stats().busy, pool.stats().queued) == (0, 0)
