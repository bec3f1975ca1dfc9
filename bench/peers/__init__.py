"""The peers' benchmark apps, run from ``bench/.venv-peers`` (dramatiq, taskiq; no alsek).

Each module defines the same two tasks as ``apps.alsek_threads`` (a no-op and a 1 ms sleep,
ending with ``completions.done()``) with minimal use of its framework's API, and ``submit``
queues messages for them.
"""
