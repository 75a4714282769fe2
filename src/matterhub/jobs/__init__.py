"""Durable background work: job records in the catalog and the worker loop that runs them.

Connect's pipeline and the hub's asynchronous runs share this: a job is written in the same
transaction as whatever acknowledges it, claimed with a lease, and re-queued on restart.
"""

from matterhub.jobs.queue import Job, JobQueue
from matterhub.jobs.worker import JobWorker

__all__ = ["Job", "JobQueue", "JobWorker"]
