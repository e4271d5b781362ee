"""The `gthread` worker's thread pool: a request never waits while a thread could
take it.

Gunicorn's `gthread` worker hands every request to a `ThreadPoolExecutor`. That
executor decides whether to start a thread from a count of idle threads that is not
tied to its queue: a thread counts itself idle before it reads the queue, and if the
queue holds a request it takes it and stays counted. A later request then finds the
count above zero, starts no thread, and waits until some thread finishes, which for
an LLM stream is seconds. With 1,000 ten-second streams opened at once on two workers
of 1,024 threads, about 130 of them waited a whole stream this way in one run of
three (`bench/streams.py`). Here the count of sleeping threads is exact: a thread that
finds the queue empty puts itself on a stack of sleepers under the pool's lock, and
`submit` takes one sleeper off that stack and wakes it, or starts a thread when none
sleeps. Requests still wait in one queue that busy threads read before they sleep, so
under load it costs no more than the executor (`bench/RESULTS.md`).
"""

import threading
from collections import deque
from concurrent.futures import Future


class _Sleeper:
    """An idle thread: the lock it sleeps on (held while it sleeps)."""

    __slots__ = ('wake',)

    def __init__(self):
        self.wake = threading.Lock()
        self.wake.acquire()


class ExactThreadPool:
    """`submit` and `shutdown` of `concurrent.futures.ThreadPoolExecutor`, with
    threads started on demand up to `max_workers`. Tasks wait in one queue, which a
    thread that finishes a task reads before it sleeps; a sleeping thread is on a
    stack, and `submit` takes one off it (under the pool's lock) and wakes it, or
    starts a thread when none sleeps, so a task waits only when the pool is full."""

    def __init__(self, max_workers, name='aegisflow-worker'):
        if max_workers < 1:
            raise ValueError('max_workers must be at least 1')
        self.max_workers = max_workers
        self._name = name
        self._lock = threading.Lock()
        self._queue = deque()
        self._sleeping = []  # a stack of _Sleeper: the last to sleep is woken first
        self._threads = set()
        self._started = 0
        self._shutdown = False

    def submit(self, fn, /, *args, **kwargs):
        future = Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError('cannot schedule new futures after shutdown')
            self._queue.append((future, fn, args, kwargs))
            if self._sleeping:
                self._sleeping.pop().wake.release()
                return future
            if len(self._threads) >= self.max_workers:
                return (
                    future  # NOTE: every thread is busy: the first to finish takes it
                )
            self._started += 1
            thread = threading.Thread(
                target=self._run, name=f'{self._name}-{self._started}', daemon=True
            )
            self._threads.add(thread)
        thread.start()
        return future

    def _run(self):
        me = _Sleeper()
        lock, queue = self._lock, self._queue
        try:
            while True:
                with lock:
                    if queue:
                        task = queue.popleft()
                    elif self._shutdown:
                        return
                    else:
                        task = None
                        self._sleeping.append(me)
                if task is None:
                    me.wake.acquire()  # NOTE: released by submit or shutdown
                    continue
                _call(task)
                del task
        finally:
            with lock:
                self._threads.discard(threading.current_thread())

    def shutdown(self, wait=True, *, cancel_futures=False):
        with self._lock:
            self._shutdown = True
            cancelled = list(self._queue) if cancel_futures else []
            if cancel_futures:
                self._queue.clear()
            sleeping, self._sleeping = self._sleeping, []
            threads = list(self._threads)
        for future, *_ in cancelled:
            future.cancel()
        for one in sleeping:
            one.wake.release()
        if wait:
            for thread in threads:
                if thread is not threading.current_thread():
                    thread.join()


def _call(task):
    future, fn, args, kwargs = task
    if not future.set_running_or_notify_cancel():
        return
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:  # NOTE: as ThreadPoolExecutor: the future holds it
        future.set_exception(exc)
    else:
        future.set_result(result)
