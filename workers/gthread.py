"""Gunicorn's `gthread` worker with AegisFlow's thread pool (`workers.pool`)."""

from gunicorn.workers.gthread import ThreadWorker as _ThreadWorker

from workers.pool import LifoThreadPool


class ThreadWorker(_ThreadWorker):
    def get_thread_pool(self):
        return LifoThreadPool(self.cfg.threads)
