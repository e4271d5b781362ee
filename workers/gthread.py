"""Gunicorn's `gthread` worker with AegisFlow's thread pool (`workers.pool`)."""

from gunicorn.workers.gthread import ThreadWorker as _ThreadWorker

from workers.pool import ExactThreadPool


class ThreadWorker(_ThreadWorker):
    def get_thread_pool(self):
        return ExactThreadPool(self.cfg.threads)
