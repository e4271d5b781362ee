"""The gthread worker's thread pool: no request waits while a thread could take it."""

import threading

import pytest

from workers.pool import ExactThreadPool


def test_every_task_starts_at_once_while_the_pool_has_room():
    pool = ExactThreadPool(64)
    started = threading.Barrier(51)  # 50 tasks and this thread
    release = threading.Event()

    def task(i):
        started.wait(10)  # NOTE: fails (BrokenBarrierError) unless all 50 run at once
        release.wait(10)
        return i

    futures = [pool.submit(task, i) for i in range(50)]
    started.wait(10)
    release.set()
    assert [f.result(10) for f in futures] == list(range(50))
    pool.shutdown()


def _meet(started, release):
    started.wait(10)  # NOTE: BrokenBarrierError unless all of them run at once
    release.wait(10)


def test_idle_threads_are_reused_and_a_burst_after_a_burst_still_starts_at_once():
    pool = ExactThreadPool(64)
    for _ in range(3):
        started = threading.Barrier(41)
        release = threading.Event()
        futures = [pool.submit(_meet, started, release) for _ in range(40)]
        started.wait(10)
        release.set()
        for f in futures:
            f.result(10)
    assert len(pool._threads) <= 64
    pool.shutdown()


def test_at_its_size_the_pool_queues_and_runs_the_backlog():
    pool = ExactThreadPool(2)
    gate = threading.Event()
    order = []
    blockers = [pool.submit(gate.wait, 10) for _ in range(2)]
    queued = [pool.submit(order.append, i) for i in range(5)]
    assert not any(f.done() for f in queued)
    gate.set()
    for f in blockers + queued:
        f.result(10)
    assert sorted(order) == [0, 1, 2, 3, 4]
    assert len(pool._threads) == 2
    pool.shutdown()


def _until(predicate):
    done = threading.Event()
    for _ in range(1000):  # NOTE: a poll with a 10 s deadline
        if predicate():
            return
        done.wait(0.01)
    raise AssertionError('condition not reached in 10 s')


def test_the_last_thread_to_sleep_is_woken_first():
    pool = ExactThreadPool(8)
    gate = threading.Event()
    futures = [pool.submit(gate.wait, 10) for _ in range(3)]
    gate.set()
    for f in futures:
        f.result(10)
    _until(lambda: len(pool._sleeping) == 3)
    last = pool._sleeping[-1]
    # inside the task: the thread that runs it has left the idle stack
    seen = pool.submit(lambda: list(pool._sleeping)).result(10)
    assert len(seen) == 2 and last not in seen
    pool.shutdown()


def test_exceptions_reach_the_future_and_the_thread_lives_on():
    pool = ExactThreadPool(1)

    def boom():
        raise ValueError('no')

    with pytest.raises(ValueError, match='no'):
        pool.submit(boom).result(10)
    assert pool.submit(lambda: 42).result(10) == 42
    pool.shutdown()


def test_shutdown_ends_idle_threads_and_cancels_the_backlog_if_asked():
    pool = ExactThreadPool(1)
    gate = threading.Event()
    running = pool.submit(gate.wait, 10)
    waiting = pool.submit(lambda: 1)
    pool.shutdown(wait=False, cancel_futures=True)
    assert waiting.cancelled()
    with pytest.raises(RuntimeError):
        pool.submit(lambda: 1)
    gate.set()
    assert running.result(10) is True
    _until(lambda: not pool._threads)
