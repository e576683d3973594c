"""The upstream transport over real sockets: both choices behave alike to the client.

A raw TCP server plays each upstream behaviour (an answer, gzip, a dropped connection,
a cut body, silence), and every test runs with the aiohttp transport and with httpx's
own pool: the requests on the wire, the responses and the error types must match,
since retries decide by error type whether a write may be repeated.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import pytest
import pytest_asyncio
from bench.server import free_port

from loopdesk.loop.http import UpstreamHTTP
from loopdesk.loop.retry_policy import request_never_sent
from loopdesk.loop.transport import AiohttpTransport
from loopdesk.settings import Settings

Behaviour = Callable[[asyncio.StreamReader, asyncio.StreamWriter, bytes], Awaitable[None]]


@dataclass
class Upstream:
    url: str
    seen: list[bytes] = field(default_factory=list)  # each request's head and body
    connections: int = 0
    behaviour: Behaviour | None = None


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head + (await reader.readexactly(length) if length else b"")


def _answer(status: str, body: bytes, *headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *headers, "", ""]
    return "\r\n".join(lines).encode() + body


async def _json_echo(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes
) -> None:
    target = raw.split(b" ", 2)[1].decode()
    body = json.dumps({"target": target}).encode()
    writer.write(_answer("200 OK", body, "Content-Type: application/json"))


@pytest_asyncio.fixture
async def upstream() -> AsyncIterator[Upstream]:
    state = Upstream(url="")

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        try:
            while True:
                raw = await _read_request(reader)
                state.seen.append(raw)
                await (state.behaviour or _json_echo)(reader, writer, raw)
                await writer.drain()
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    state.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    async with server:
        yield state


TRANSPORTS = ["aiohttp", "httpx"]


def _client(kind: str, base_url: str, **options: object) -> httpx.AsyncClient:
    transport = AiohttpTransport(max_connections=10, keepalive_s=30) if kind == "aiohttp" else None
    return httpx.AsyncClient(base_url=base_url, transport=transport, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_query_goes_out_as_httpx_encoded_it(kind: str, upstream: Upstream) -> None:
    params = {"customer_email": "a+b@example.com", "q": "café & co", "from": "2026-01-01"}
    async with _client(kind, upstream.url) as client:
        response = await client.get("/api/v2/returns", params=params)
    expected = httpx.URL("/api/v2/returns", params=params)
    assert response.json() == {"target": f"{expected.raw_path.decode()}"}
    assert "a%2Bb%40example.com" in response.json()["target"]


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_a_write_carries_its_body_and_headers_once(kind: str, upstream: Upstream) -> None:
    async with _client(kind, upstream.url, headers={"X-Authorization": "tok"}) as client:
        await client.post("/api/v1/allowlist", json={"type": "order", "value": "#1001"})
    head, _, body = upstream.seen[0].partition(b"\r\n\r\n")
    lines = [line.lower() for line in head.split(b"\r\n")[1:]]
    assert lines.count(b"x-authorization: tok") == 1
    assert sum(line.startswith(b"host:") for line in lines) == 1
    assert b"content-type: application/json" in lines
    assert json.loads(body) == {"type": "order", "value": "#1001"}


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_gzip_answers_are_decoded(kind: str, upstream: Upstream) -> None:
    async def gzipped(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, _raw: bytes) -> None:
        body = gzip.compress(b'{"data": [1, 2, 3]}')
        writer.write(_answer("200 OK", body, "Content-Encoding: gzip"))

    upstream.behaviour = gzipped
    async with _client(kind, upstream.url) as client:
        response = await client.get("/x")
    assert response.json() == {"data": [1, 2, 3]}


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_status_reason_and_headers_pass_through(kind: str, upstream: Upstream) -> None:
    async def limited(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, _raw: bytes) -> None:
        writer.write(_answer("429 Too Many Requests", b"{}", "Retry-After: 7"))

    upstream.behaviour = limited
    async with _client(kind, upstream.url) as client:
        response = await client.get("/x")
    assert (response.status_code, response.reason_phrase) == (429, "Too Many Requests")
    assert response.headers["Retry-After"] == "7"


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_connections_stay_open_between_requests(kind: str, upstream: Upstream) -> None:
    async with _client(kind, upstream.url) as client:
        for _ in range(5):
            assert (await client.get("/x")).status_code == 200
    assert (len(upstream.seen), upstream.connections) == (5, 1)


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_refused_connection_was_never_sent(kind: str) -> None:
    async with _client(kind, f"http://127.0.0.1:{free_port()}") as client:
        with pytest.raises(httpx.ConnectError) as caught:
            await client.post("/api/v1/allowlist", json={})
    assert request_never_sent(caught.value)


async def _dropped(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, _raw: bytes) -> None:
    writer.close()  # the request arrived: no answer


async def _cut(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, _raw: bytes) -> None:
    writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"data"')
    writer.close()


@pytest.mark.parametrize("kind", TRANSPORTS)
@pytest.mark.parametrize("behaviour", [_dropped, _cut], ids=["dropped", "cut-body"])
async def test_a_connection_lost_after_sending_may_have_arrived(
    kind: str, behaviour: Behaviour, upstream: Upstream
) -> None:
    upstream.behaviour = behaviour
    async with _client(kind, upstream.url) as client:
        with pytest.raises(httpx.TransportError) as caught:
            await client.post("/api/v1/allowlist", json={"value": "#1"})
    assert isinstance(caught.value, httpx.RemoteProtocolError | httpx.ReadError)
    assert not request_never_sent(caught.value)  # a write is never repeated after it
    assert len(upstream.seen) == 1


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_silence_is_a_read_timeout(kind: str, upstream: Upstream) -> None:
    async def silent(_r: asyncio.StreamReader, _w: asyncio.StreamWriter, _raw: bytes) -> None:
        await asyncio.sleep(5)

    upstream.behaviour = silent
    async with _client(kind, upstream.url, timeout=httpx.Timeout(0.3)) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/x")


def test_one_transport_serves_successive_event_loops() -> None:
    """A client made once (e.g. by a CLI command) may be used from more than one loop."""

    async def roundtrip(transport: AiohttpTransport) -> int:
        state: dict[str, int] = {}

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await _json_echo(reader, writer, await _read_request(reader))
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        state["port"] = server.sockets[0].getsockname()[1]
        async with server:
            request = httpx.Request("GET", f"http://127.0.0.1:{state['port']}/x")
            response = await transport.handle_async_request(request)
            await response.aread()
            return response.status_code

    transport = AiohttpTransport(max_connections=2, keepalive_s=1)
    assert asyncio.run(roundtrip(transport)) == 200
    assert asyncio.run(roundtrip(transport)) == 200
    asyncio.run(transport.aclose())


@pytest.mark.parametrize(("setting", "pool"), [("aiohttp", AiohttpTransport), ("httpx", None)])
async def test_the_setting_chooses_the_transport(
    setting: str, pool: type | None, upstream: Upstream
) -> None:
    settings = Settings(upstream_transport=setting)
    http = UpstreamHTTP(
        service="Loop", base_url=upstream.url, token="t" * 12, auth_header="X-A", settings=settings
    )
    try:
        transport = http._client._transport
        assert isinstance(transport, pool) if pool else type(transport) is httpx.AsyncHTTPTransport
        answer = await http.request("GET", "/api/v1/x", endpoint="x")
        assert answer.body == {"target": "/api/v1/x"}
    finally:
        await http.aclose()


def test_an_unknown_transport_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="upstream_transport"):
        Settings(upstream_transport="curl")


@pytest.mark.parametrize("kind", TRANSPORTS)
async def test_proxy_settings_from_the_environment(
    kind: str, upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP_PROXY carries requests to other hosts; NO_PROXY names hosts reached directly."""
    monkeypatch.setenv("HTTP_PROXY", upstream.url)
    monkeypatch.setenv("NO_PROXY", "direct.invalid")
    async with _client(kind, "http://loop.invalid") as client:
        response = await client.get("/api/v1/x", params={"a": "1"})
    assert response.json() == {"target": "http://loop.invalid/api/v1/x?a=1"}
    async with _client(kind, "http://direct.invalid") as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("/api/v1/x")
