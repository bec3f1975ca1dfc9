"""Example tasks for ``make demo`` (and a starting point for your own).

Run a pool over them with ``alsek thread-pool examples``; ``python -m examples.demo`` starts
everything (an embedded Redis when ``ALSEK_REDIS_URL`` is unset) and shows tasks flowing.
"""
