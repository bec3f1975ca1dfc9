"""A TLS-terminating proxy in front of one server, with a throwaway certificate authority.

Neither shipped binary is built with TLS, so TLS is tested the way many deployments run it:
clients speak TLS to a proxy that relays plain bytes to the server. The CA and the server
certificate (for ``127.0.0.1`` and ``localhost``) are made at start-up with ``trustme``; clients
trust the CA through ``ssl_ca_certs``, as with a managed Redis.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alsek.testing.processes import (
    LOOPBACK,
    StartsAndStops,
    forget_at_exit,
    free_port,
    stop_at_exit,
)

if TYPE_CHECKING:
    import trustme

__all__ = ["TlsProxy", "new_certificate_authority"]

_RELAY_CHUNK_BYTES = 64 * 1024


def new_certificate_authority() -> trustme.CA:
    """A throwaway CA (share one among the proxies of a cluster so one CA file trusts them all)."""
    try:
        import trustme
    except ImportError as error:
        hint = "TlsProxy needs trustme: `pip install trustme` (or `alsek[test]`)"
        raise ImportError(hint) from error
    return trustme.CA()


class TlsProxy(StartsAndStops):
    """Accepts TLS on its own loopback port and relays each connection to ``target_port``.

    Args:
        target_port: the plain server port on 127.0.0.1 (a ``RedisServer``'s, a node's, ...).
        certificate_authority: the CA that signs the proxy's certificate; a new one by default.
        port: a fixed port for the proxy; by default a free one is picked.
        host: the loopback address to listen on (its certificate names it).
    """

    def __init__(
        self,
        target_port: int,
        certificate_authority: trustme.CA | None = None,
        port: int | None = None,
        host: str = LOOPBACK,
    ) -> None:
        self.target_port = target_port
        self.certificate_authority = certificate_authority or new_certificate_authority()
        self.host = host
        self.port = port or free_port(host)
        self._dir: str | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    def __repr__(self) -> str:
        return f"<TlsProxy {self.host}:{self.port} -> {LOOPBACK}:{self.target_port}>"

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` of the TLS side."""
        return (self.host, self.port)

    @property
    def ca_certs_path(self) -> Path:
        """PEM file of the CA, for ``ssl_ca_certs`` (exists while the proxy runs)."""
        if self._dir is None:
            raise RuntimeError(f"{self!r} is not started")
        return Path(self._dir) / "ca.pem"

    @property
    def url(self) -> str:
        """``rediss://`` URL (db 0) trusting the CA, for ``Redis.from_url`` sync or asyncio."""
        return f"rediss://{self.host}:{self.port}/0?ssl_ca_certs={self.ca_certs_path}"

    def start(self) -> TlsProxy:
        """Listen, and return once connections are accepted."""
        if self._thread is not None:
            return self
        self._dir = tempfile.mkdtemp(prefix="alsek-tls-")
        self.certificate_authority.cert_pem.write_to_path(str(self.ca_certs_path))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.certificate_authority.issue_cert(self.host, "localhost").configure_cert(context)
        listening = threading.Event()
        failures: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._serve,
            args=(context, listening, failures),
            name=f"alsek-tls-proxy-{self.port}",
            daemon=True,
        )
        self._thread.start()
        listening.wait(timeout=10)
        if failures or not listening.is_set():
            self.stop()
            raise RuntimeError(f"{self!r} did not start: {failures}")
        stop_at_exit(self)
        return self

    def stop(self) -> None:
        """Close the listener and every relayed connection; remove the CA file."""
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._thread = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        forget_at_exit(self)

    def _serve(
        self, context: ssl.SSLContext, listening: threading.Event, failures: list[BaseException]
    ) -> None:
        loop = asyncio.new_event_loop()
        loop.set_exception_handler(_ignore_failed_handshakes)
        try:
            loop.run_until_complete(self._listen(loop, context, listening))
        except BaseException as error:
            failures.append(error)
        finally:
            loop.close()

    async def _listen(
        self,
        loop: asyncio.AbstractEventLoop,
        context: ssl.SSLContext,
        listening: threading.Event,
    ) -> None:
        self._loop = loop
        self._stopping = asyncio.Event()
        open_writers: set[asyncio.StreamWriter] = set()
        relays: set[asyncio.Task[None]] = set()

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            relays.add(task)
            try:
                await self._relay(reader, writer, open_writers)
            finally:
                relays.discard(task)

        server = await asyncio.start_server(accept, self.host, self.port, ssl=context)
        listening.set()
        await self._stopping.wait()
        server.close()
        # Closing the connections ends the relays the way a client leaving does: cancelling
        # them instead would make asyncio report every one as an error.
        for writer in list(open_writers):
            writer.close()
        await asyncio.gather(*relays, return_exceptions=True)
        await server.wait_closed()

    async def _relay(
        self,
        client_in: asyncio.StreamReader,
        client_out: asyncio.StreamWriter,
        open_writers: set[asyncio.StreamWriter],
    ) -> None:
        open_writers.add(client_out)
        try:
            server_in, server_out = await asyncio.open_connection(LOOPBACK, self.target_port)
        except OSError:
            open_writers.discard(client_out)
            client_out.close()
            return
        open_writers.add(server_out)
        try:
            await asyncio.gather(_pump(client_in, server_out), _pump(server_in, client_out))
        finally:
            for writer in (server_out, client_out):
                open_writers.discard(writer)
                writer.close()


async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until either side closes; then close the sink so the other pump ends too."""
    try:
        while chunk := await source.read(_RELAY_CHUNK_BYTES):
            sink.write(chunk)
            await sink.drain()
    except (ConnectionError, ssl.SSLError, OSError):
        pass
    finally:
        sink.close()


def _ignore_failed_handshakes(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """A plain-text client hitting the TLS port is expected in tests: not worth a log line."""
    if isinstance(context.get("exception"), (ssl.SSLError, ConnectionError)):
        return
    loop.default_exception_handler(context)
