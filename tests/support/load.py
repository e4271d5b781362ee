"""Bounded loopback load: N requests from C threads, each with its own session."""

import collections
import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

import requests


def run_load(url, total, concurrency, *, body, headers, stream_every=0, timeout=30):
    """POST `total` requests; return a Counter of status codes (stream bodies are read
    to the end; a broken stream counts as 'broken')."""
    counter = collections.Counter()
    lock = threading.Lock()
    local = threading.local()
    sent = iter(range(total))
    sent_lock = threading.Lock()

    def one():
        session = getattr(local, 'session', None)
        if session is None:
            session = local.session = requests.Session()
        while True:
            with sent_lock:
                i = next(sent, None)
            if i is None:
                return
            stream = bool(stream_every) and i % stream_every == 0
            payload = dict(body, stream=True) if stream else body
            try:
                r = session.post(
                    url, json=payload, headers=headers, timeout=timeout, stream=stream
                )
                status = r.status_code
                if stream:
                    data = r.content
                    if not data.rstrip().endswith(b'data: [DONE]'):
                        status = 'broken'
            except requests.RequestException:
                status = 'error'
            with lock:
                counter[status] += 1

    with ThreadPoolExecutor(concurrency) as pool:
        for f in [pool.submit(one) for _ in range(concurrency)]:
            f.result()
    return counter


@contextlib.contextmanager
def steady(send, clients=8):
    """`clients` threads call `send(i)` (i: the thread's number) without pause until
    the block ends; yields the list its results are appended to. On leaving, every
    thread is stopped and joined, and an error raised in one is raised here."""
    stop = threading.Event()
    results = []

    def loop(i):
        while not stop.is_set():
            results.append(send(i))

    with ThreadPoolExecutor(clients) as pool:
        running = [pool.submit(loop, i) for i in range(clients)]
        try:
            yield results
        finally:
            stop.set()
            for f in running:
                f.result()
