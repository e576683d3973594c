"""Webhook secrets: several accepted, none with a real token means every webhook is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from bench.server import free_port

from loopdesk.api.app import create_app
from loopdesk.domain.webhooks import signature, signature_valid_any
from loopdesk.settings import SANDBOX_WEBHOOK_SECRET, Settings

KEY = "test-api-key-0123456789"
BODY = json.dumps(
    {
        "topic": "return",
        "trigger": "return.updated",
        "id": "9001",
        "state": "open",
        "customer": "jane@example.com",
        "created_at": "2026-11-01T10:00:00+00:00",
        "updated_at": "2026-11-02T10:00:00+00:00",
    }
).encode()


@asynccontextmanager
async def service(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        yield c


def _settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings(
        api_key=KEY,
        sandbox_rate_limit_per_minute=0,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/hooks.db",
        **kw,  # type: ignore[arg-type]
    )


async def _post(client: httpx.AsyncClient, secret: str, body: bytes = BODY) -> httpx.Response:
    return await client.post(
        "/webhooks/loop", content=body, headers={"X-Loop-Signature": signature(body, secret)}
    )


def test_secrets_from_env_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOPDESK_LOOP_WEBHOOK_SECRET", " old-secret , new-secret,, ")
    settings = Settings(loop_api_token="real-token")
    assert settings.webhook_secrets == ("old-secret", "new-secret")
    assert "old-secret" not in repr(settings)


def test_secrets_from_toml_are_a_list(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LOOPDESK_LOOP_WEBHOOK_SECRET", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "loopdesk.toml").write_text('loop_webhook_secret = ["first", "second"]\n')
    assert Settings(loop_api_token="real-token").webhook_secrets == ("first", "second")


def test_sandbox_default_only_without_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOOPDESK_LOOP_WEBHOOK_SECRET", raising=False)
    assert Settings().webhook_secrets == (SANDBOX_WEBHOOK_SECRET,)
    assert Settings(loop_api_token="real-token").webhook_secrets == ()
    # the sandbox itself signs with the first configured secret, or its default
    assert Settings(loop_webhook_secret="a,b").sandbox_webhook_secret == "a"
    assert Settings(loop_api_token="real-token").sandbox_webhook_secret == SANDBOX_WEBHOOK_SECRET


def test_any_secret_verifies() -> None:
    assert signature_valid_any(BODY, signature(BODY, "b"), ["a", "b"])
    assert not signature_valid_any(BODY, signature(BODY, "c"), ["a", "b"])
    assert not signature_valid_any(BODY, signature(BODY, "a"), [])
    assert not signature_valid_any(BODY, None, ["a"])


async def test_real_token_without_secret_refuses_every_webhook(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LOOPDESK_LOOP_WEBHOOK_SECRET", raising=False)
    settings = _settings(tmp_path, loop_api_token="real-token", loop_base_url="http://loop.invalid")
    async with service(settings) as client:
        assert (await client.get("/healthz")).status_code == 200  # it starts
        for secret in (SANDBOX_WEBHOOK_SECRET, "", "anything"):
            response = await _post(client, secret or "x")
            assert response.status_code == 401
            error = response.json()["error"]
            assert error["code"] == "unauthorized"
            assert "LOOPDESK_LOOP_WEBHOOK_SECRET" in error["message"]
            assert error["details"] == {"setting": "LOOPDESK_LOOP_WEBHOOK_SECRET"}
        unsigned = await client.post("/webhooks/loop", content=BODY)
        assert unsigned.status_code == 401
    warning = [line for line in capsys.readouterr().err.splitlines() if "refused_no_secret" in line]
    assert warning and "LOOPDESK_LOOP_WEBHOOK_SECRET" in warning[0]


async def test_rotation_accepts_old_and_new_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LOOPDESK_LOOP_WEBHOOK_SECRET", "old-secret,new-secret")
    settings = _settings(tmp_path)
    async with service(settings) as client:
        first = await _post(client, "old-secret")
        assert first.status_code == 200 and first.json()["result"] == "received"
        newer = BODY.replace(b"2026-11-02", b"2026-11-03")
        assert (await _post(client, "new-secret", newer)).status_code == 200
        # with secrets configured, the public sandbox default no longer verifies
        other = BODY.replace(b"2026-11-02", b"2026-11-04")
        refused = await _post(client, SANDBOX_WEBHOOK_SECRET, other)
        assert refused.status_code == 401
        assert "X-Loop-Signature" in refused.json()["error"]["message"]


def test_serve_with_token_and_no_secret_starts_warns_and_refuses(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPDESK_")}
    env |= {
        "LOOPDESK_LOOP_API_TOKEN": "real-token-0123456789",
        "LOOPDESK_LOOP_BASE_URL": "http://127.0.0.1:9",  # never called at start-up
        "LOOPDESK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/s.db",
        "LOOPDESK_API_KEY": KEY,
    }
    port = free_port()
    out = tmp_path / "serve.log"
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "loopdesk", "serve", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert proc.poll() is None and time.monotonic() < deadline, out.read_text()
                time.sleep(0.2)
            body = BODY
            sig = signature(body, SANDBOX_WEBHOOK_SECRET)
            response = httpx.post(
                f"{url}/webhooks/loop", content=body, headers={"X-Loop-Signature": sig}
            )
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    assert response.status_code == 401
    assert "LOOPDESK_LOOP_WEBHOOK_SECRET" in response.json()["error"]["message"]
    log = out.read_text()
    assert "LOOPDESK_LOOP_WEBHOOK_SECRET is not set" in log  # on the terminal
    assert "webhooks.refused_no_secret" in log  # and in the JSON log
