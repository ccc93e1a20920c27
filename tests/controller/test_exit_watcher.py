"""ExitWatcher: the loop's wait returns when any watched descriptor becomes readable."""

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


def _waited(watcher: ExitWatcher, timeout: float = WAIT_SECONDS) -> float:
    start = time.monotonic()
    watcher.wait(timeout)
    return time.monotonic() - start


def test_each_readable_descriptor_ends_the_wait_and_is_closed() -> None:
    watcher = ExitWatcher()
    pipes = [os.pipe() for _ in range(3)]
    try:
        for read, _ in pipes:
            watcher.watch(read)
        assert _waited(watcher, 0.05) >= 0.04  # nothing readable: the whole timeout
        for index, (_, write) in enumerate(pipes):
            os.write(write, b"x")
            assert _waited(watcher) < WAIT_SECONDS / 2, f"pipe {index} did not end the wait"
        # Each read end was closed once readable: the writes now fail, and nothing is left
        # to end the next wait early.
        for _, write in pipes:
            try:
                os.write(write, b"y")
            except BrokenPipeError:
                continue
            raise AssertionError("a read end is still open")
        assert _waited(watcher, 0.05) >= 0.04
    finally:
        watcher.close()
        for _, write in pipes:
            os.close(write)


def test_a_descriptor_readable_before_the_wait_ends_it_at_once() -> None:
    watcher = ExitWatcher()
    read, write = os.pipe()
    try:
        watcher.watch(read)
        os.write(write, b"x")
        assert _waited(watcher) < WAIT_SECONDS / 2
        assert not _fd_is_open(read)
    finally:
        watcher.close()
        os.close(write)


def test_wake_from_another_thread_ends_the_wait_once() -> None:
    watcher = ExitWatcher()
    try:
        waker = threading.Timer(0.05, watcher.wake)
        waker.start()
        assert _waited(watcher) < WAIT_SECONDS / 2
        waker.join()
        # A wake before the wait ends that wait; it is then spent.
        watcher.wake()
        watcher.wake()
        assert _waited(watcher) < WAIT_SECONDS / 2
        assert _waited(watcher, 0.05) >= 0.04
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
    watcher.wake()  # after close: harmless, writes nowhere
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
