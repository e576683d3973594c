"""The baseline for warm lookups: a bare FastAPI endpoint returning the same JSON from
memory, served by the same uvicorn set-up as loopdesk."""

from __future__ import annotations

import json
import os
from typing import Any

from fastapi import FastAPI


def create_app() -> FastAPI:
    with open(os.environ["BENCH_BARE_JSON"]) as handle:
        payload: dict[str, Any] = json.load(handle)
    app = FastAPI()

    @app.get("/v1/customers/lookup")
    async def lookup() -> dict[str, Any]:
        return payload

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
