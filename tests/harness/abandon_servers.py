"""A test's child process: starts servers, prints their pids and directories, then leaves without
stopping them, either by returning (``exit``) or by SIGKILLing itself (``sigkill``)."""

from __future__ import annotations

import json
import os
import signal
import sys

from alsek.testing import RedisServer, TlsProxy


def main(how: str) -> None:
    servers = [RedisServer(flavour="redis").start(), RedisServer(flavour="valkey").start()]
    proxy = TlsProxy(servers[0].port).start()
    report = {
        "pids": [server.pid for server in servers],
        "directories": [str(server.directory) for server in servers]
        + [str(proxy.ca_certs_path.parent)],
        "proxy_port": proxy.port,
    }
    print(json.dumps(report), flush=True)
    if how == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    main(sys.argv[1])
