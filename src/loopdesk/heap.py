"""What start-up built, kept out of the garbage collector's full scans.

Start-up's objects (modules, the app, compiled rules and templates, the guide's
classifier) live as long as the process, yet every full collection walks them again.
Under load that stopped the event loop for 110-155 ms every second or so, which was
the whole of the warm lookups' p99 (`make bench`). Frozen once start-up is done, a
full collection walks only what came after. `thaw` undoes it when the app stops, so a
process that builds many apps (the tests) frees each one.
"""

from __future__ import annotations

import gc

import structlog

log = structlog.get_logger(__name__)


def freeze() -> int:
    """Freeze what the collector tracks now; how many objects. No collection first:
    it would cost a full scan (over 100 ms), and start-up leaves little garbage for
    the freeze to keep (about 50 objects, counted by collecting first in `make bench`)."""
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info("heap.frozen", objects=frozen)
    return frozen


def thaw() -> None:
    gc.unfreeze()
