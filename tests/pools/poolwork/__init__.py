"""Task code the pool tests run, importable by the pools' child processes and by subprocesses.

* ``probe``: where a running task records evidence (Redis keys under the test's namespace).
* ``sync_work``: the sync task functions and the task class with recording hooks.
* ``cli``: the tasks of one pool kind, configured from the environment, for ``alsek <kind>-pool``.
* ``launch``: starts a pool over ``cli`` with options the CLI does not have (``lease_ttl``).
"""
