"""Serving the API with uvicorn: on a background thread inside ``revaer run``, or in the foreground for ``revaer api``.

The listening socket is bound here, before uvicorn starts, so that a port in
use is one clear error at once (uvicorn would log it and call ``sys.exit``),
and so that port 0 works: :attr:`ApiServer.port` is the port actually bound.

The server runs on uvloop and parses HTTP with httptools. The API's loop
shares the GIL with the engine's thread, which rarely lets go of it: every
time the loop thread releases it (a system call, a wait for I/O), it may wait
a whole switch interval (5 ms) to get it back. asyncio's selector loop and
the h11 parser release it around each ``send``, ``recv`` and poll; uvloop
makes its socket calls in C with the GIL held, letting go of it only to wait
for I/O. With 200 event streams open and events published as fast as one
thread can, a ``/health`` request's median went from 14 to 9 ms and its
worst from 37-99 ms to 17-51 ms; the event rate kept, noisier, went from a
median 0.86 of the rate without clients to 0.95 (``benchmarks/streams.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterable

import uvicorn
from litestar import Litestar
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from revaer_core.api.app import EVENTS_PATH, STREAMS_STATE
from revaer_core.api.stream import StreamHub
from revaer_core.errors import RevaerError
from revaer_core.lifecycle import StartedInWith

log = logging.getLogger(__name__)

#: Seconds open requests (event streams above all) get to finish when the server stops.
DEFAULT_GRACE_SECONDS = 2
#: How often a stopping server looks whether its open connections and requests are done.
SHUTDOWN_POLL_S = 0.005

#: The kernel send buffer of every connection (accepted sockets inherit the listener's). Left to
#: autotuning, loopback buffers grow to megabytes, and the loop spent its time filling them for
#: event-stream clients that never read; with a fixed size such a client soon parks its stream.
SEND_BUFFER_BYTES = 32 * 1024


class _Protocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol (httptools), pausing a response's writer as soon as the kernel leaves bytes unsent.

    A transport buffers up to 64 KiB above what the kernel takes before it pauses
    the writer; an event stream whose client does not read then held that
    much more, each byte encoded and copied on the loop for nothing. Paused at
    once, a stream holds at most the one write the kernel did not take.
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        transport.set_write_buffer_limits(high=0)


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``, or a RevaerError saying why not.

    The socket is made with protocol ``IPPROTO_TCP`` and ``TCP_NODELAY`` (which
    accepted connections inherit): asyncio turns Nagle's algorithm off only for
    sockets whose protocol says TCP, and with it on, every response (headers,
    then body) waited about 40 ms for the client's delayed ACK. Its send buffer
    is fixed at :data:`SEND_BUFFER_BYTES`, for the same accepted sockets.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
            sock.bind(address)
            sock.listen()
        except OSError:
            sock.close()
            raise
        return sock
    except OSError as exc:
        raise RevaerError(f"the API cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


def _drop_parked_streams(connections: Iterable[object]) -> None:
    """Abort the connections of event streams parked on a write their client does not read.

    A stopping server told their streams to end, but such a stream waits for
    the write first, and would hold the stop for the whole grace period and
    then be cancelled with a traceback each. Its client loses that last write
    of a stream that ends anyway; every other request keeps the grace period.
    """
    for connection in list(connections):
        if not isinstance(connection, _Protocol):
            continue
        cycle, flow = connection.cycle, connection.flow
        streaming = cycle is not None and not cycle.response_complete and cycle.scope["path"] == EVENTS_PATH
        if streaming and flow is not None and flow.write_paused:
            connection.transport.abort()


class _Server(uvicorn.Server):
    """uvicorn's server, woken by :meth:`wake` at once instead of at its next tick.

    uvicorn looks at ``should_exit`` every 0.1 s; a stop then waited up to a
    tick before it stopped accepting, time every stop of the daemon paid.
    """

    _woken: asyncio.Event | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    streams: StreamHub | None = None  #: the app's event streams, ended first when the server stops

    async def main_loop(self) -> None:
        """uvicorn's loop of ticks (default headers once a second, ``should_exit``), each cut short by a wake."""
        self._woken, self._loop = asyncio.Event(), asyncio.get_running_loop()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864_000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), 0.1)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's shutdown, each wait ending as soon as what it waits for is done.

        uvicorn sleeps 0.1 s after asking the open connections to close, then
        looks at what is left once every 0.1 s: an idle server took 0.1 s to
        stop, time every stop of the daemon paid. Here the connections and
        requests still open are looked at every :data:`SHUTDOWN_POLL_S`, for at
        most the grace period, after which what is left is cancelled.
        """
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        state = self.server_state
        if self.streams is not None:
            self.streams.close()
            await asyncio.sleep(0)  # the loop turn in which waiting streams end
            _drop_parked_streams(state.connections)
        try:
            async with asyncio.timeout(self.config.timeout_graceful_shutdown):
                await asyncio.sleep(0)  # the loop turn in which idle connections close
                while (state.connections or state.tasks) and not self.force_exit:
                    await asyncio.sleep(SHUTDOWN_POLL_S)
                for server in self.servers:
                    await server.wait_closed()
        except TimeoutError:
            log.error("the API cancels %d request(s) still open after the %g s grace period",
                      len(state.tasks), self.config.timeout_graceful_shutdown)  # fmt: skip
            for task in state.tasks:
                task.cancel(msg="the API stopped: its grace period for open requests was over")
        if not self.force_exit:
            await self.lifespan.shutdown()

    def wake(self) -> None:
        """Ask for the exit and wake the loop to see it; from any thread."""
        self.should_exit = True
        loop, woken = self._loop, self._woken
        if loop is not None and woken is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed already: nothing left to wake
                loop.call_soon_threadsafe(woken.set)


class ApiServer(StartedInWith):
    """The API app under uvicorn, on a socket bound at construction.

    In ``revaer run``::

        server = ApiServer(create_app(store, bus=bus, health=board, metrics=metrics, catalog=catalog,
                                      token=settings.api.token, bind_host=settings.api.host),
                           host=settings.api.host, port=settings.api.port)
        server.start()   # returns once requests are served
        ...
        server.stop()    # stops accepting, gives open streams ``grace`` seconds, joins the thread
    """

    def __init__(self, app: Litestar, *, host: str, port: int, grace: int = DEFAULT_GRACE_SECONDS) -> None:
        self.host = host
        self._socket = listen(host, port)
        self.port: int = self._socket.getsockname()[1]  #: the port bound (the system's choice when 0 was asked for)
        self._server = _Server(
            uvicorn.Config(
                app, http=_Protocol, loop="uvloop", log_config=None, timeout_graceful_shutdown=grace, lifespan="on"
            )
        )
        self._server.streams = app.state.get(STREAMS_STATE)
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def serve_forever(self) -> None:
        """Serve in this thread until SIGINT/SIGTERM (main thread) or :meth:`stop`."""
        try:
            self._server.run(sockets=[self._socket])
        except SystemExit as exc:  # uvicorn exits when the app's startup fails
            raise RevaerError(f"the API failed to start (uvicorn exited with {exc.code})") from None
        finally:
            self._socket.close()

    def start(self, timeout: float = 10.0) -> None:
        """Serve on a daemon thread; returns once the server accepts requests."""
        if self._thread is not None:
            raise RuntimeError("ApiServer.start() called twice")
        self._thread = threading.Thread(target=self._run_in_thread, name="revaer-api", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if self._failure is not None or not self._thread.is_alive():
                raise RevaerError(f"the API failed to start on {self.url}: {self._failure}")
            if time.monotonic() > deadline:
                self.stop()
                raise RevaerError(f"the API did not start on {self.url} within {timeout:g} s")
            time.sleep(0.001)  # the daemon says it is running only after this: each poll it sleeps past is a delay

    def _run_in_thread(self) -> None:
        try:
            self.serve_forever()
        except BaseException as exc:  # reported by start(); a thread has no one else to tell
            self._failure = exc

    def stop(self, timeout: float | None = None) -> None:
        """Stop accepting, let open requests finish within the grace period, and join the thread."""
        self._server.wake()
        if self._thread is not None:
            self._thread.join(timeout)
        else:
            self._socket.close()

    def close(self) -> None:
        """What leaving a ``with`` block does: :meth:`stop`, waiting for the thread as long as it takes."""
        self.stop()
