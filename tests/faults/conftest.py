"""The fault matrix's summary line, printed once at the end of the run."""

from __future__ import annotations

from _pytest.terminal import TerminalReporter

from tests.faults.tally import TALLY


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    if TALLY.cases:
        terminalreporter.write_sep("-", "lookup fault matrix")
        terminalreporter.write_line(TALLY.summary())
