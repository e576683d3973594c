from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from loopdesk.api.app import create_app
from loopdesk.settings import Settings

KEY = "test-api-key-0123456789"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        api_key=KEY,
        sandbox_rate_limit_per_minute=0,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/api.db",
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        yield c


AUTH = {"Authorization": f"Bearer {KEY}"}


async def test_health_and_openapi(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    schema = (await client.get("/openapi.json")).json()
    assert "/v1/customers/lookup" in schema["paths"]


async def test_lookup_requires_a_valid_key(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        response = await client.get("/v1/customers/lookup?email=a@b.co", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
        assert KEY not in response.text


async def test_lookup_answers_the_cli_contract(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/v1/customers/lookup",
        params=[("email", "primary@email.com"), ("email", "secondary@email.com")],
        headers=AUTH,
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"returns", "orders", "facts", "meta"}
    assert body["meta"]["source"] == "sandbox"
    assert body["returns"][0]["notes"] is not None


@pytest.mark.parametrize("query", ["", "?email=", "?email=nobody"])
async def test_lookup_bad_input_is_422_in_the_error_shape(
    client: httpx.AsyncClient, query: str
) -> None:
    response = await client.get(f"/v1/customers/lookup{query}", headers=AUTH)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input" and error["message"]
    assert isinstance(error["details"], dict)


async def test_sandbox_is_mounted_when_no_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/sandbox/_sandbox/health", headers=AUTH)
    assert response.status_code == 200


async def test_lookup_answer_is_exactly_the_declared_model(client: httpx.AsyncClient) -> None:
    from loopdesk.customers.view import CustomerView

    response = await client.get(
        "/v1/customers/lookup", params=[("email", "primary@email.com")], headers=AUTH
    )
    body = response.json()
    view = CustomerView.model_validate(body)  # LoopReturn/Order forbid unknown fields
    assert view.to_json() == body
    schema = (await client.get("/openapi.json")).json()
    ok = schema["paths"]["/v1/customers/lookup"]["get"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"]["$ref"].endswith("/CustomerView")
    bad = schema["paths"]["/v1/customers/lookup"]["get"]["responses"]["422"]
    assert bad["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")


async def test_bad_json_body_is_400_in_the_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/customers/lookup",
        content=b"[" * 100_000,
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"
