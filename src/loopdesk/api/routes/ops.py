"""Operations: health, readiness, Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from loopdesk.api.deps import MetricsDep, StoreDep
from loopdesk.api.errors import error_response

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "not ready"}})
async def readyz(store: StoreDep) -> JSONResponse:
    if await store.ping():
        return JSONResponse({"status": "ready"})
    return error_response(503, "not_ready", "database unreachable")


@router.get("/metrics", response_class=PlainTextResponse)
async def prometheus(metrics: MetricsDep) -> Response:
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
