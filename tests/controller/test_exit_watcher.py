"""ExitWatcher: the loop's wait ends when any watched descriptor becomes readable, or when
another thread wakes it; readable descriptors are closed."""

from __future__ import annotations

import os
import threading
import time

from tuner.controller._watcher import ExitWatcher

WAIT_SECONDS = 30.0


def _fd_is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def test_each_readable_descriptor_ends_the_wait_and_is_closed() -> None:
    watcher = ExitWatcher()
    pipes = [os.pipe() for _ in range(3)]
    try:
        for read, _ in pipes:
            watcher.watch(read)
        assert not watcher.wait(0.05)  # nothing readable yet
        for index, (_, write) in enumerate(pipes):
            os.write(write, b"x")
            assert watcher.wait(WAIT_SECONDS), f"pipe {index} did not end the wait"
        # The watcher closed each read end once it was readable: the writes now fail.
        for _, write in pipes:
            try:
                os.write(write, b"y")
            except BrokenPipeError:
                continue
            raise AssertionError("a read end is still open")
        assert not watcher.wait(0.05)  # the ended ones no longer end a wait
    finally:
        watcher.close()
        for _, write in pipes:
            os.close(write)


def test_a_wait_ends_when_a_descriptor_closes_while_it_sleeps() -> None:
    watcher = ExitWatcher()
    read, write = os.pipe()
    watcher.watch(read)
    closer = threading.Timer(0.1, os.close, (write,))
    closer.start()
    try:
        start = time.monotonic()
        assert watcher.wait(WAIT_SECONDS)
        assert time.monotonic() - start < WAIT_SECONDS
        assert not _fd_is_open(read)
    finally:
        closer.join()
        watcher.close()


def test_wake_from_another_thread_ends_the_wait_once() -> None:
    watcher = ExitWatcher()
    try:
        waker = threading.Timer(0.1, watcher.wake)
        waker.start()
        assert watcher.wait(WAIT_SECONDS)
        waker.join()
        watcher.wake()
        watcher.wake()  # before the wait: it ends at once, and both are used up
        assert watcher.wait(WAIT_SECONDS)
        assert not watcher.wait(0.05)
    finally:
        watcher.close()


def test_close_closes_what_it_still_holds_and_later_descriptors_at_once() -> None:
    watcher = ExitWatcher()
    read, write = os.pipe()
    watcher.watch(read)
    watcher.close()
    assert not _fd_is_open(read)
    late_read, late_write = os.pipe()
    watcher.watch(late_read)  # after close: closed, not watched
    assert not _fd_is_open(late_read)
    watcher.wake()  # after close: harmless
    watcher.close()  # twice is harmless
    os.close(write)
    os.close(late_write)


def test_the_watcher_starts_no_thread() -> None:
    before = threading.active_count()
    watcher = ExitWatcher()
    read, write = os.pipe()
    watcher.watch(read)
    assert threading.active_count() == before
    watcher.close()
    os.close(write)
