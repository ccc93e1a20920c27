"""ExitWatcher: one thread wakes the loop when any watched descriptor becomes readable."""

from __future__ import annotations

import os
import threading

from tuner.controller._watcher import ExitWatcher

WAIT_SECONDS = 30.0


def _fd_is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def test_each_readable_descriptor_wakes_the_loop_and_is_closed() -> None:
    woken = threading.Event()
    watcher = ExitWatcher(woken.set)
    pipes = [os.pipe() for _ in range(3)]
    try:
        for read, _ in pipes:
            watcher.watch(read)
        assert not woken.wait(0.05)  # nothing readable yet
        for index, (_, write) in enumerate(pipes):
            os.write(write, b"x")
            assert woken.wait(WAIT_SECONDS), f"pipe {index} did not wake the loop"
            woken.clear()
        # The watcher closed each read end once it was readable: the writes now fail.
        for _, write in pipes:
            try:
                os.write(write, b"y")
            except BrokenPipeError:
                continue
            raise AssertionError("a read end is still open")
    finally:
        watcher.close()
        for _, write in pipes:
            os.close(write)


def test_close_closes_what_it_still_holds_and_later_descriptors_at_once() -> None:
    watcher = ExitWatcher(lambda: None)
    read, write = os.pipe()
    watcher.watch(read)
    watcher.close()
    assert not _fd_is_open(read)
    late_read, late_write = os.pipe()
    watcher.watch(late_read)  # after close: closed, not watched
    assert not _fd_is_open(late_read)
    watcher.close()  # twice is harmless
    os.close(write)
    os.close(late_write)


def test_close_without_any_descriptor_starts_no_thread() -> None:
    before = threading.active_count()
    watcher = ExitWatcher(lambda: None)
    watcher.close()
    assert threading.active_count() == before
