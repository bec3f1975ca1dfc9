"""Callback chaining and argument inspection, where SPEC §13.5 names them.

Only re-exports: the code lives in ``callbacks.py`` and ``arguments.py``, below ``base.py``.
"""

from alsek.core.task.arguments import expects_message
from alsek.core.task.callbacks import build_callback_message, parse_callback

__all__ = ["build_callback_message", "expects_message", "parse_callback"]
