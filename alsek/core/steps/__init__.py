"""The engine's I/O vocabulary and its two drivers (below the broker; no alsek names above).

* ``ops``: what an operation written as steps may ask for (round trips, subscriptions,
  pauses, emitted values, function calls).
* ``drivers``: the blocking and the asyncio driver that turn those ops into I/O.
* ``sending`` and ``batching``: how a round trip is sent (scripts by SHA, reloaded on NOSCRIPT;
  idempotent requests of concurrent callers batched into one pipeline).
* ``hub``: the process' shared pub/sub connections, behind ``Subscribe`` and ``Receive``.
* ``waiting``: steps that wait for a publish, a consistent snapshot, a deadline.
* ``outage``: what a Redis outage is, and the pauses between attempts while it lasts.
"""
