"""The peers' benchmark apps, run from ``bench/.venv-peers`` (Dramatiq, taskiq, Celery; no alsek).

Each module defines the same tasks as ``apps.alsek_threads`` (a no-op, a 1 ms sleep and the
latency probe, ending with ``completions.done()``) with minimal use of its framework's API,
``submit`` to queue a backlog and ``send`` to submit one message (see ``apps.submit``).
BullMQ's app is in Node: ``peers/bullmq`` (``worker.mjs``, ``producer.mjs``).
"""
