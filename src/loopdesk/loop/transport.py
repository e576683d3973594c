"""httpx's requests sent through aiohttp's connection pool and C HTTP parser.

A cold lookup makes about a dozen upstream requests whose CPU cost adds to what the
user waits for: a request through httpx and its own pool (httpcore) costs about 0.8 ms
of CPU here, through httpx and aiohttp about 0.4 ms (aiohttp alone, 0.2 ms). The rest
of loopdesk keeps speaking httpx (requests,
responses, errors), so retries, limits and the tests' respx mocks see no difference.

aiohttp's failures become httpx's by one rule that matters for retries: only a failure
before any byte was sent is a `ConnectError`/`ConnectTimeout` (a write may then be
repeated); a connection lost later is a `RemoteProtocolError`/`ReadError`, which
`retry_policy` never repeats for a write.
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.request
from typing import Any

import aiohttp
import httpx
from yarl import URL


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One `aiohttp.ClientSession` per event loop, opened at the first request."""

    def __init__(self, *, max_connections: int, keepalive_s: float) -> None:
        self._max_connections = max_connections
        self._keepalive_s = keepalive_s
        self._ssl: ssl.SSLContext = httpx.create_ssl_context()  # httpx's CA bundle and env
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timeouts: dict[tuple[Any, ...], aiohttp.ClientTimeout] = {}
        self._proxies: dict[tuple[str, str], str | None] = {}

    def _open(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                keepalive_timeout=self._keepalive_s,
                ssl=self._ssl,
            )
            # No trust_env: it reads the environment (netrc, proxies) in a thread on
            # every request; `_proxy` reads it once per origin.
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
            self._loop = loop
        return self._session

    def _timeout(self, request: httpx.Request) -> aiohttp.ClientTimeout:
        given = request.extensions.get("timeout") or {}
        key = (given.get("pool"), given.get("connect"), given.get("read"))
        timeout = self._timeouts.get(key)
        if timeout is None:
            pool, connect, read = key
            # `connect` bounds the wait for a pooled connection plus opening one.
            total_connect = None if pool is None or connect is None else pool + connect
            timeout = aiohttp.ClientTimeout(
                total=None, connect=total_connect, sock_connect=connect, sock_read=read
            )
            self._timeouts[key] = timeout
        return timeout

    def _proxy(self, url: httpx.URL) -> str | None:
        """HTTP(S)_PROXY / ALL_PROXY unless NO_PROXY names the host, as httpx reads them."""
        key = (url.scheme, url.host)
        if key not in self._proxies:
            env = urllib.request.getproxies_environment()
            proxy = env.get(url.scheme) or env.get("all")
            if proxy and urllib.request.proxy_bypass(url.host):
                proxy = None
            self._proxies[key] = proxy
        return self._proxies[key]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._open()
        content = await request.aread()
        try:
            async with session.request(
                request.method,
                URL(str(request.url), encoded=True),  # as httpx encoded it, not re-quoted
                headers=request.headers.multi_items(),
                data=content or None,
                allow_redirects=False,
                timeout=self._timeout(request),
                proxy=self._proxy(request.url),
            ) as response:
                body = await response.read()
        except aiohttp.ClientError as exc:
            raise _as_httpx(exc, request) from exc
        except TimeoutError as exc:  # aiohttp's own timeouts are ClientErrors too
            raise httpx.ReadTimeout("timed out", request=request) from exc
        return httpx.Response(
            status_code=response.status,
            headers=list(response.raw_headers),
            stream=httpx.ByteStream(body),  # decoded by httpx per Content-Encoding
            request=request,
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": (response.reason or "").encode("ascii", "replace"),
            },
        )

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


def _as_httpx(exc: aiohttp.ClientError, request: httpx.Request) -> httpx.TransportError:
    """The httpx error whose retry meaning matches what happened (see module doc)."""
    text = str(exc) or type(exc).__name__
    # Before the request left: the connection could not be had or opened.
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(text, request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(text, request=request)
    # After it may have arrived.
    if isinstance(exc, aiohttp.SocketTimeoutError | aiohttp.ServerTimeoutError):
        return httpx.ReadTimeout(text, request=request)
    if isinstance(
        exc,
        aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientResponseError,
    ):
        return httpx.RemoteProtocolError(text, request=request)
    return httpx.ReadError(text, request=request)
