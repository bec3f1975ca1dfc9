"""Tools built on the result store."""

from alsek.tools.iteration import ResultPool

__all__ = ["ResultPool"]
