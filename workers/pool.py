"""The `gthread` worker's thread pool: a request never waits while a thread could
take it.

Gunicorn's `gthread` worker hands every request to a `ThreadPoolExecutor`. That
executor decides whether to start a thread from a count of idle threads that is not
tied to the queue: when many requests arrive at once, a request can find the count
above zero, start no thread, and then see the idle thread take another request from
the queue. The request then waits until some thread finishes, which for an LLM stream
is seconds; with 1,000 ten-second streams opened at once on two workers of 1,024
threads, about 130 of them waited a whole stream this way in one run of three
(`bench/streams.py`). Here an idle thread waits on its own lock, on a stack: a request
is handed to one idle thread under the pool's lock, or starts a new thread when none
is idle, and waits in the backlog only when the pool is at its size.
"""

import threading
from collections import deque
from concurrent.futures import Future


class _Idle:
    """One idle thread: its wake-up lock (held while it sleeps) and its next task."""

    __slots__ = ('wake', 'task')

    def __init__(self):
        self.wake = threading.Lock()
        self.wake.acquire()
        self.task = None


class LifoThreadPool:
    """`submit` and `shutdown` of `concurrent.futures.ThreadPoolExecutor`, with
    threads started on demand up to `max_workers`; the last thread to go idle is
    the first woken (its stack and caches are the warmest)."""

    def __init__(self, max_workers, name='aegisflow-worker'):
        if max_workers < 1:
            raise ValueError('max_workers must be at least 1')
        self.max_workers = max_workers
        self._name = name
        self._lock = threading.Lock()
        self._idle = []  # a stack of _Idle
        self._backlog = deque()  # tasks waiting for a thread (all busy, at the size)
        self._threads = set()
        self._started = 0
        self._shutdown = False

    def submit(self, fn, /, *args, **kwargs):
        future = Future()
        task = (future, fn, args, kwargs)
        with self._lock:
            if self._shutdown:
                raise RuntimeError('cannot schedule new futures after shutdown')
            if self._idle:
                idle = self._idle.pop()
                idle.task = task
                idle.wake.release()  # ORDER: after the task is in place
                return future
            if len(self._threads) >= self.max_workers:
                self._backlog.append(task)
                return future
            self._started += 1
            thread = threading.Thread(
                target=self._run,
                args=(task,),
                name=f'{self._name}-{self._started}',
                daemon=True,
            )
            self._threads.add(thread)
        thread.start()
        return future

    def _run(self, task):
        idle = _Idle()
        try:
            while task is not None:
                _call(task)
                task = None
                with self._lock:
                    if self._backlog:
                        task = self._backlog.popleft()
                        continue
                    if self._shutdown:
                        return
                    self._idle.append(idle)
                idle.wake.acquire()  # NOTE: released by submit or shutdown
                task, idle.task = idle.task, None
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def shutdown(self, wait=True, *, cancel_futures=False):
        with self._lock:
            self._shutdown = True
            idle, self._idle = self._idle, []
            cancelled = list(self._backlog) if cancel_futures else []
            if cancel_futures:
                self._backlog.clear()
            threads = list(self._threads)
        for future, *_ in cancelled:
            future.cancel()
        for one in idle:
            one.wake.release()  # NOTE: its task stays None: the thread ends
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
