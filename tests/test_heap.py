"""Start-up's objects leave the garbage collector's full scans once the service is
warm (a full collection then walks only what came after), and come back when it stops."""

from __future__ import annotations

import asyncio
import gc
import time
from pathlib import Path

from loopdesk.api.app import create_app
from loopdesk.settings import Settings


async def test_start_up_is_frozen_once_warm_and_thawed_when_the_app_stops(tmp_path: Path) -> None:
    gc.unfreeze()  # whatever another test may have left frozen in this process
    app = create_app(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/heap.db"))
    async with app.router.lifespan_context(app):
        deadline = time.monotonic() + 120  # the classifier trains first
        while gc.get_freeze_count() == 0:
            assert time.monotonic() < deadline, "start-up was never frozen"
            await asyncio.sleep(0.05)
        # The app, its routes, models and classifier: far more than a handful, and
        # more than what a full collection still walks (all it tracks besides).
        frozen = gc.get_freeze_count()
        assert frozen > 50_000
        assert len(gc.get_objects()) < frozen / 2
    assert gc.get_freeze_count() == 0
