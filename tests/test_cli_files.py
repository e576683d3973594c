"""Every command that reads a file, fed anything: random bytes, text that is not UTF-8,
JSON nested far too deep, JSON of the wrong types. The answer is a clear message on
standard error and a non-zero exit (or, for a body that happens to be usable, a result):
never a stack trace, never partial output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from loopdesk.cli.main import app
from tests import reports

runner = CliRunner()
TRIED: dict[str, int] = {}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
# Shapes near the real bodies, with the wrong types inside.
near_bodies = st.one_of(
    st.fixed_dictionaries({"status": st.just("success"), "data": json_values}),
    st.fixed_dictionaries({"data": st.fixed_dictionaries({"orders": json_values})}),
    st.fixed_dictionaries({"notes": json_values}),
    st.fixed_dictionaries({"returns": json_values}),
    st.fixed_dictionaries({"returns": st.lists(json_values, max_size=3), "orders": json_values}),
    st.lists(
        st.dictionaries(st.sampled_from(["id", "content", "created_at", "state"]), json_values)
    ),
)


@st.composite
def deep(draw: st.DrawFn) -> bytes:
    depth = draw(st.integers(min_value=2_000, max_value=150_000))
    opener = draw(st.sampled_from(["[", '{"a":', '{"data":', '{"returns":[']))
    return (opener * depth).encode()


file_bodies = st.one_of(
    st.binary(max_size=300),
    st.binary(min_size=1, max_size=100).map(lambda b: b"\xff\xfe" + b),  # never UTF-8
    st.text(max_size=50).map(lambda t: ("\u00e9" + t).encode("latin-1", "replace")),
    deep(),
    json_values.map(lambda v: json.dumps(v).encode()),
    near_bodies.map(lambda v: json.dumps(v).encode()),
)


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("LOOPDESK_LOOP_API_TOKEN", "LOOPDESK_SANDBOX_DATA", "LOOPDESK_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOOPDESK_SANDBOX_RATE_LIMIT_PER_MINUTE", "0")
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module", autouse=True)
def _report(pytestconfig: pytest.Config) -> Iterator[None]:
    yield
    total = sum(TRIED.values())
    detail = ", ".join(f"{name}: {n}" for name, n in sorted(TRIED.items()))
    line = f"[bad input] CLI files tried: {total} ({detail}), stack traces: 0"
    reports.add(pytestconfig, reports.FIGURES, [line])


def _assert_clean(result: Result, what: str) -> None:
    TRIED[what] = TRIED.get(what, 0) + 1
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        what,
        repr(result.exception),
    )
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    if result.exit_code == 0:
        return
    assert result.exit_code in (1, 2), (what, result.exit_code)
    assert result.stdout == "", (what, result.stdout[:200])
    assert any(line.startswith("error:") for line in result.stderr.splitlines()), (
        what,
        result.stderr[:200],
    )
    assert "unexpected" not in result.stderr, (what, result.stderr[:300])  # a clear reason


def _write(tmp: Path, body: bytes) -> Path:
    target = tmp / "body.json"
    target.write_bytes(body)
    return target


KIND_ARGS = {
    "returns": ["--email", "primary@email.com"],
    "notes": ["--return-id", "25"],
    "orders": [],
}
FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(body=file_bodies, kind=st.sampled_from(sorted(KIND_ARGS)))
def test_normalize_file_never_shows_a_stack_trace(tmp_path: Path, body: bytes, kind: str) -> None:
    path = _write(tmp_path, body)
    result = runner.invoke(app, ["normalize", kind, str(path), *KIND_ARGS[kind]])
    _assert_clean(result, f"normalize {kind} FILE")
    if result.exit_code == 0:
        assert isinstance(json.loads(result.stdout), list)


@FUZZ
@given(body=file_bodies, kind=st.sampled_from(sorted(KIND_ARGS)))
def test_normalize_stdin_never_shows_a_stack_trace(body: bytes, kind: str) -> None:
    result = runner.invoke(app, ["normalize", kind, *KIND_ARGS[kind]], input=body)
    _assert_clean(result, f"normalize {kind} <stdin")


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=file_bodies, command=st.sampled_from(["lookup", "return-link", "allowlist-list"]))
def test_sandbox_data_file_never_shows_a_stack_trace(
    tmp_path: Path, body: bytes, command: str
) -> None:
    path = _write(tmp_path, body)
    args = {
        "lookup": ["lookup", "primary@email.com", "--json"],
        "return-link": ["return-link", "#1101", "43215"],
        "allowlist-list": ["allowlist", "list"],
    }[command]
    result = runner.invoke(app, [*args, "--sandbox-data", str(path)])
    _assert_clean(result, f"{command} --sandbox-data")


BAD_FILES: dict[str, bytes] = {
    "not UTF-8": b"\xff\xfe{\x00}",
    "nested too deeply": b"[" * 100_000,
    "not JSON": b"{returns: }",
    "not an object": b"[]",
    "returns of the wrong type": b'{"returns": 5}',
    "a return of the wrong type": b'{"returns": ["x"]}',
    "empty": b"",
}


@pytest.mark.parametrize("command", ["serve", "sandbox"])
@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_servers_refuse_a_bad_sandbox_file_before_starting(
    tmp_path: Path, command: str, name: str
) -> None:
    path = _write(tmp_path, BAD_FILES[name])
    result = runner.invoke(app, [command, "--port", "9", "--sandbox-data", str(path)])
    _assert_clean(result, f"{command} --sandbox-data")
    assert result.exit_code == 2 and str(path) in result.stderr.replace("\n", "")


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_sandbox_data_from_the_environment_is_refused_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv("LOOPDESK_SANDBOX_DATA", str(_write(tmp_path, BAD_FILES[name])))
    result = runner.invoke(app, ["lookup", "primary@email.com"])
    _assert_clean(result, "LOOPDESK_SANDBOX_DATA")
    assert result.exit_code != 0


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"\xff\xfe", "not UTF-8"), (b"lookup_ttl_s = [", "not valid TOML"), (b"[[[", "TOML")],
)
def test_a_bad_loopdesk_toml_is_a_message(content: bytes, reason: str) -> None:
    Path("loopdesk.toml").write_bytes(content)
    result = runner.invoke(app, ["lookup", "primary@email.com"])
    _assert_clean(result, "loopdesk.toml")
    assert result.exit_code == 1 and reason in result.stderr


def test_unreadable_paths_are_a_message(tmp_path: Path) -> None:
    for args in (
        ["normalize", "returns", str(tmp_path)],  # a directory
        ["normalize", "orders", str(tmp_path / "missing.json")],
        ["lookup", "primary@email.com", "--sandbox-data", str(tmp_path / "missing.json")],
    ):
        result = runner.invoke(app, args)
        _assert_clean(result, "unreadable path")
        assert result.exit_code != 0


# aiosqlite's worker thread may finish after the loop of a failed open is closed.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_database_that_cannot_be_opened_is_a_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for url in (
        f"sqlite+aiosqlite:///{tmp_path}/missing-dir/x.db",
        "postgresql+asyncpg://someone:hunter2-password@127.0.0.1:9/none",
    ):
        monkeypatch.setenv("LOOPDESK_DATABASE_URL", url)
        result = runner.invoke(app, ["lookup", "primary@email.com"])
        _assert_clean(result, "LOOPDESK_DATABASE_URL")
        assert result.exit_code == 1 and "cannot open the database" in result.stderr
        assert "hunter2" not in result.stderr
