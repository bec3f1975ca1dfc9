"""alsek's command line: ``alsek thread-pool``, ``process-pool`` and ``async-pool``."""
