"""Tasks and launchers that the fault tests run in real pool subprocesses."""
