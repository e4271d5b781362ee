"""The orphan watchdog ends a worker whose master is gone, even one stuck before
its loop (the thread does not depend on the worker's main thread)."""

import threading

from workers import orphan


def test_orphan_watch_exits_after_the_grace_once_the_parent_changes():
    parents = iter([100, 100, 100, 1])
    waits, exited = [], threading.Event()
    codes = []

    def exit_(code):
        codes.append(code)
        exited.set()

    thread = orphan.watch(
        100, 7, exit=exit_, getppid=lambda: next(parents), wait=waits.append
    )
    assert exited.wait(5)
    thread.join(5)
    assert codes == [1]
    # three checks while the master lived, then the grace period, then the exit
    assert waits == [orphan.CHECK_S] * 3 + [7]
