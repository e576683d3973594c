"""The fault matrix's summary line, printed once at the end of the run."""

from __future__ import annotations

import pytest

from tests import reports
from tests.faults.tally import TALLY


def pytest_sessionfinish(session: pytest.Session) -> None:
    if TALLY.cases:
        reports.add(session.config, "lookup fault matrix", [TALLY.summary()])
