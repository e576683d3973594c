"""Figures the suite prints once, at its end: what a fuzzer tried, the intents' held-out
accuracy, the guide's containment table, the fault matrix.

A test or a conftest adds lines with `add(config, title, lines)` (or the `report`
fixture); they are printed in the terminal summary, a section per title. Under
pytest-xdist (`make test` runs the suite on several workers) each worker sends what it
gathered to the controller in `workeroutput`, so the figures of every worker appear
once, in the controller's summary, whatever worker ran the test.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

import pytest
from _pytest.terminal import TerminalReporter

REPORTS = pytest.StashKey[dict[str, list[str]]]()
WORKER_KEY = "loopdesk_reports"
FIGURES = "figures"
Report = Callable[[str], None]
_config: list[pytest.Config] = []  # the running session's, for xdist's controller hook


def pytest_configure(config: pytest.Config) -> None:
    _config[:] = [config]


def add(config: pytest.Config, title: str, lines: Iterable[str]) -> None:
    """Lines for the summary's section `title` (sections in order of first use)."""
    config.stash.setdefault(REPORTS, {}).setdefault(title, []).extend(lines)


@pytest.fixture
def report(pytestconfig: pytest.Config) -> Report:
    """`report(text)`: a line (or several) for the summary's figures section."""

    def emit(text: str) -> None:
        add(pytestconfig, FIGURES, text.strip("\n").splitlines())

    return emit


# Test files (or folders) whose tests add up one figure between them (a tally, a
# containment table, a count kept at module scope): each runs whole on one xdist worker
# (`--dist loadgroup`), so its figure is whole too.
WHOLE = ("tests/guides/", "tests/faults/", "tests/test_bad_input.py", "tests/test_cli_files.py")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups off the items
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = config.rootpath
    for item in items:
        where = item.path.relative_to(root).as_posix() if item.path.is_relative_to(root) else ""
        group = next((w for w in WHOLE if where.startswith(w)), None)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    output = getattr(config, "workeroutput", None)
    if output is not None:  # an xdist worker: the controller prints
        output[WORKER_KEY] = json.dumps(config.stash.get(REPORTS, {}))


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    """xdist's controller: a worker finished; keep what it gathered."""
    output = getattr(node, "workeroutput", None) or {}
    gathered = json.loads(output.get(WORKER_KEY) or "{}")
    for title, lines in gathered.items():
        add(_config[0], title, lines)


def pytest_terminal_summary(terminalreporter: TerminalReporter, config: pytest.Config) -> None:
    for title, lines in config.stash.get(REPORTS, {}).items():
        if lines:
            terminalreporter.write_sep("-", title)
            for line in lines:
                terminalreporter.write_line(line)
