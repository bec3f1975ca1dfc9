"""ACL users: a named user with a password and every right, and the URL that logs in as it."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote, urlsplit, urlunsplit

from alsek.testing.server import RedisServer

__all__ = ["acl_user_url", "add_acl_user"]


def add_acl_user(servers: Iterable[RedisServer], username: str, password: str) -> None:
    """Create (or reset) ``username`` with ``password`` and all keys, channels and commands on
    every one of ``servers``: ACLs are per process, neither replicated nor shared by a cluster."""
    for server in servers:
        server.command(
            "ACL", "SETUSER", username, "reset", "on", f">{password}", "~*", "&*", "+@all"
        )


def acl_user_url(url: str, username: str, password: str) -> str:
    """``url`` (``redis://`` or ``rediss://``) logging in as ``username`` with ``password``."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    credentials = f"{quote(username, safe='')}:{quote(password, safe='')}"
    return urlunsplit(parts._replace(netloc=f"{credentials}@{host}"))
