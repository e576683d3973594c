"""The Gladly App Platform app: `loopdesk gladly export-app DIR --base-url URL`.

The app is laid out as Gladly's own Loop apps are (`manifest.json`, a GraphQL data
schema, data pulls, actions with their GraphQL schema, sidebar cards, an admin form and
`_test_` data beside each template), but every request goes to loopdesk at URL, with
the loopdesk API key the admin pastes as the app's credential:

- data pull `returns`: `GET {URL}/v1/customers/lookup?email=...` with every address of
  the profile, one request per customer; the returns with their notes, and the routing
  facts on each (`LoopReturn.facts`);
- data pull `orders`: the same lookup (then served from loopdesk's store), the orders
  with the facts;
- actions `return_status` (`GET /v1/returns/status`), `create_return_link`
  (`POST /v1/actions/return-link`) and `request_exception`
  (`POST /v1/exceptions/requests`), for Sidekick, Guides and App Actions;
- the steps of creating a whole return (`gladly.draft_actions`): `check_eligibility`
  through `submit_return`, each on a `/v1/drafts` route, and `get_return_details`
  (`GET /v1/returns/details`). A merchant whose policy file turns creating returns off
  (`[returns] create_in_conversation = false`) gets the app without the draft steps.

The files are this package's `app_files/`, rendered with Jinja2 under `[[ ]]` and
`[% %]` delimiters (Gladly's Go templates and cards keep `{{ }}`); the base URL, the
facts and loopdesk's messages are filled in. The `_test_` data are the service's own
answers: a loopdesk over the seeded sandbox (in process, a throwaway database, the
merchant's policy and rules files, never the real Loop) is asked each case's request,
in the order of the case folders, and the answer is written as `rawData.json` beside
the request and what the template makes of the answer. The functions below under "What
the templates do" state each template's behaviour in Python; the export computes the
expected outputs with them.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote_plus, urlsplit

import httpx
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pydantic import SecretStr

from loopdesk import __version__
from loopdesk.customers.profile import NO_EMAIL_MESSAGES
from loopdesk.domain.facts import FACTS
from loopdesk.errors import InvalidInput, LoopdeskError
from loopdesk.gladly.draft_actions import (
    DETAILS_ACTION,
    DRAFT_ACTIONS,
    DRAFT_CASES,
    TEST_DIR,
    DraftCase,
    draft_action_body,
    draft_action_output,
    draft_action_url,
    expected_status,
    filled,
    prepare,
)
from loopdesk.policy.file import load_policy
from loopdesk.sandbox.seed import DEMO_EMAILS, DEMO_ORDER_NAMES, DEMO_ZIP, EXCEPTION_PERSONAS
from loopdesk.settings import Settings

APP_FILES = Path(__file__).with_name("app_files")
PARTIALS = "_partials"
DATA_TYPES = {"returns": "loopdesk_return", "orders": "loopdesk_order"}
ACTION_PATHS = {
    "return_status": ("GET", "/v1/returns/status"),
    "create_return_link": ("POST", "/v1/actions/return-link"),
    "request_exception": ("POST", "/v1/exceptions/requests"),
}
MISSING_KEY_MESSAGE = "no loopdesk API key: paste one in the app's configuration"
# What the `_test_` data put in the app's credentials (the templates' tests only).
TEST_INTEGRATION = {"configuration": {}, "secrets": {"apiKey": "test-api-key"}}
GRAPHQL_TYPES = {bool: "Boolean", int: "Int", str: "String"}
# Characters no base URL needs, which would break the templates' text or a JSON string.
UNSAFE_URL_CHARACTERS = frozenset(' "<>\\^`{|}')


class ExportError(LoopdeskError):
    """The app cannot be written where asked."""

    code = "export_failed"


# --- the inputs ---------------------------------------------------------------------


def check_base_url(url: str) -> str:
    """The base URL the app calls, without a trailing `/`; InvalidInput otherwise."""
    text = url.strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError as exc:
        raise InvalidInput(f"--base-url is not a URL: {exc}") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidInput(
            f"--base-url must be an https:// (or http://) URL with a host, got {text[:80]!r}"
        )
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(
            "--base-url must not hold credentials: the API key is pasted into Gladly"
        )
    if parts.query or parts.fragment or text.endswith(("?", "#")):
        raise InvalidInput("--base-url must not have a query or a fragment")
    bad = sorted({c for c in text if c in UNSAFE_URL_CHARACTERS or ord(c) < 0x21 or ord(c) == 0x7F})
    if bad:
        raise InvalidInput(f"--base-url holds characters a URL cannot: {''.join(bad)!r}")
    return text.rstrip("/")


def check_target(directory: Path, *, force: bool) -> None:
    """`directory` can take the app: absent (created), empty, or any folder with
    `force`; and writable. ExportError otherwise, before any work."""
    try:
        if directory.exists():
            if not directory.is_dir():
                raise ExportError(f"{directory} exists and is not a folder")
            if not force and any(directory.iterdir()):
                raise ExportError(
                    f"{directory} is not empty: give --force to write the app over it"
                )
            if not os.access(directory, os.W_OK | os.X_OK):
                raise ExportError(f"{directory} is not writable")
            return
        parent = directory.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise ExportError(f"cannot create {directory}: {parent} is not a folder")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise ExportError(f"cannot create {directory}: {parent} is not writable")
    except OSError as exc:
        raise ExportError(f"cannot use {directory}: {exc.strerror or exc}") from None


# --- the templates ------------------------------------------------------------------


def _environment() -> Environment:
    # The output is JSON, GraphQL and Go templates, never HTML: nothing to escape.
    env = Environment(
        loader=FileSystemLoader(APP_FILES),
        variable_start_string="[[",
        variable_end_string="]]",
        block_start_string="[%",
        block_end_string="%]",
        comment_start_string="[#",
        comment_end_string="#]",
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701
    )
    # A Go string literal (JSON's escapes are Go's), and JSON without HTML escaping.
    env.filters["gostring"] = json.dumps
    env.filters["tojson"] = json.dumps
    env.filters["graphql_text"] = lambda text: str(text).replace('"""', '\\"""')
    return env


def template_context(base_url: str, *, drafts: bool = True) -> dict[str, Any]:
    return {
        "base_url": base_url,
        "drafts": drafts,
        "version": __version__,
        "facts": [
            {"name": f.name, "definition": f.definition, "graphql_type": GRAPHQL_TYPES[f.type]}
            for f in FACTS
        ],
        "stop_messages": NO_EMAIL_MESSAGES,
        "missing_key_message": MISSING_KEY_MESSAGE,
    }


def render_templates(base_url: str, *, drafts: bool = True) -> dict[str, str]:
    """Every file of the app but its `_test_` data: path -> text. Without `drafts`,
    the draft-return steps are left out."""
    env = _environment()
    context = template_context(base_url, drafts=drafts)
    left_out = () if drafts else tuple(f"actions/{name}/" for name in DRAFT_ACTIONS)
    files = {}
    for path in sorted(APP_FILES.rglob("*")):
        relative = path.relative_to(APP_FILES).as_posix()
        if not path.is_file() or relative.startswith(PARTIALS) or "__pycache__" in relative:
            continue
        if relative.startswith(left_out):
            continue
        text = env.get_template(relative).render(context).rstrip("\n")
        # A Go template's text is its output: none ends with a line break (a header
        # value, a URL), as the expected outputs of the `_test_` data do not.
        files[relative] = text if relative.endswith(".gtpl") else text + "\n"
    return files


# --- what the templates do (in Python, for the expected outputs) --------------------


def profile_addresses(customer: Mapping[str, Any]) -> list[str]:
    """The addresses a data pull sends: the primary first, then the others, trimmed,
    lower-cased, once each (`_partials/lookup_url.gtpl`)."""
    found: list[str] = []
    primary = customer.get("primaryEmailAddress")
    for email in [primary] if primary else []:
        found.append(str(email).strip().lower())
    for email in customer.get("emailAddresses") or []:
        found.append(str(email).strip().lower())
    return [e for e in dict.fromkeys(found) if e]


def lookup_url(base_url: str, customer: Mapping[str, Any]) -> str | None:
    """A data pull's request URL; None where the template stops (no address)."""
    emails = profile_addresses(customer)
    if not emails:
        return None
    return f"{base_url}/v1/customers/lookup?" + "&".join(f"email={quote_plus(e)}" for e in emails)


def pull_output(kind: Literal["returns", "orders"], answer: Mapping[str, Any]) -> list[Any]:
    """A data pull's objects: loopdesk's returns or orders, each with the facts."""
    facts = {f.name: answer["facts"][f.name] for f in FACTS if f.name in answer["facts"]}
    return [{**item, "facts": facts} for item in answer[kind]]


def action_url(base_url: str, action: str, inputs: Mapping[str, Any]) -> str:
    path = ACTION_PATHS[action][1]
    if action != "return_status":
        return base_url + path
    query = "&".join(f"email={quote_plus(e)}" for e in inputs["emails"])
    if inputs.get("orderName"):
        query += f"&order={quote_plus(inputs['orderName'])}"
    return f"{base_url}{path}?{query}"


def action_body(action: str, inputs: Mapping[str, Any]) -> dict[str, Any] | None:
    if action == "create_return_link":
        return {"orderName": inputs.get("orderName"), "zip": inputs.get("zip")}
    if action == "request_exception":
        body: dict[str, Any] = {
            "emails": inputs.get("emails"),
            "orderName": inputs.get("orderName"),
        }
        if "vip" in inputs:
            body["vip"] = inputs["vip"]
        if inputs.get("tags"):
            body["attributes"] = {"tags": inputs["tags"]}
        if inputs.get("conversationId"):
            body["conversationId"] = inputs["conversationId"]
        return body
    return None


def action_output(status: int, answer: Any) -> Any:
    """An action's result: loopdesk's answer on a 2xx, else its error alone."""
    if 200 <= status < 300:
        return answer
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        error = answer["error"]
        return {"error": {k: error[k] for k in ("code", "message") if k in error}}
    raise ExportError(f"loopdesk answered HTTP {status} without its error body: {answer!r:.200}")


# --- the `_test_` cases ------------------------------------------------------------

DEMO_PROFILE = {
    "id": "demo-customer",
    "name": "Demo Customer",
    "primaryEmailAddress": DEMO_EMAILS[0],
    "emailAddresses": list(DEMO_EMAILS),
    "primaryPhoneNumber": {"number": "+15551234567", "type": "MOBILE"},
    "phoneNumbers": [{"number": "+15551234567", "type": "MOBILE"}],
}
UNKNOWN_PROFILE = {
    "id": "unknown-customer",
    "primaryEmailAddress": "unknown@example.com",
    "emailAddresses": ["unknown@example.com"],
}
NO_EMAIL_PROFILE = {"id": "phone-only-customer", "name": "Phone Only", "phoneNumbers": []}
_PERSONA = {p.order_name: p for p in EXCEPTION_PERSONAS}


@dataclass(frozen=True)
class PullCase:
    pull: Literal["returns", "orders"]
    name: str
    customer: dict[str, Any]

    @property
    def folder(self) -> str:
        return f"data/pull/{self.pull}/{TEST_DIR}/{self.name}"


@dataclass(frozen=True)
class ActionCase:
    action: str
    name: str
    inputs: dict[str, Any]

    @property
    def folder(self) -> str:
        return f"actions/{self.action}/{TEST_DIR}/{self.name}"


def _exception_inputs(order: str, **extra: Any) -> dict[str, Any]:
    return {"emails": [_PERSONA[order].email], "orderName": order, **extra}


PULL_CASES = (
    PullCase("returns", "success", DEMO_PROFILE),
    PullCase("returns", "unknown_customer", UNKNOWN_PROFILE),
    PullCase("returns", "no_customer_email", NO_EMAIL_PROFILE),
    PullCase("orders", "success", DEMO_PROFILE),
    PullCase("orders", "no_customer_email", NO_EMAIL_PROFILE),
)
ACTION_CASES = (
    ActionCase("return_status", "success", {"emails": list(DEMO_EMAILS)}),
    ActionCase(
        "return_status",
        "one_order",
        {"emails": list(DEMO_EMAILS), "orderName": DEMO_ORDER_NAMES[0]},
    ),
    ActionCase("return_status", "bad_email", {"emails": ["not an address"]}),
    ActionCase(
        "create_return_link", "success", {"orderName": DEMO_ORDER_NAMES[0], "zip": DEMO_ZIP}
    ),
    ActionCase(
        "create_return_link", "wrong_zip", {"orderName": DEMO_ORDER_NAMES[0], "zip": "00000"}
    ),
    ActionCase(
        "request_exception", "granted", _exception_inputs("#7001", conversationId="sample-1")
    ),
    ActionCase("request_exception", "refused", _exception_inputs("#7002")),
    ActionCase("request_exception", "vip_by_tag", _exception_inputs("#7004", tags=["VIP"])),
)


def sample_settings(settings: Settings, database_url: str, api_key: str) -> Settings:
    """The service the `_test_` data come from: loopdesk over the seeded sandbox with
    the merchant's policy and rules, on a throwaway database; no real Loop, no Redis,
    no routing events, no latency or faults."""
    return Settings(
        api_key=SecretStr(api_key),
        database_url=database_url,
        loop_api_token=None,
        order_tracking_token=None,
        redis_url=None,
        sandbox_data=None,
        sandbox_token=None,
        sandbox_seed=Settings.model_fields["sandbox_seed"].default,
        sandbox_customers=Settings.model_fields["sandbox_customers"].default,
        sandbox_latency_ms=0,
        sandbox_error_rate=0.0,
        sandbox_rate_limit_per_minute=0,
        sandbox_webhooks_to_self=False,
        routing_webhook_urls=(),
        routing_scan_interval_s=0,
        guide_templates_dir=None,
        policy_file=settings.policy_file,
        rules_file=settings.rules_file,
        log_level="ERROR",
    )


@asynccontextmanager
async def sample_service(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a fresh loopdesk as `sample_settings` describes it."""
    from loopdesk.api.app import create_app  # the HTTP app, only for the samples

    with tempfile.TemporaryDirectory(prefix="loopdesk-gladly-") as tmp:
        key = secrets.token_urlsafe(24)
        app = create_app(sample_settings(settings, f"sqlite+aiosqlite:///{tmp}/samples.db", key))
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://loopdesk.sample",
                headers={"Authorization": f"Bearer {key}"},
            ) as client,
        ):
            yield client


async def ask(
    client: httpx.AsyncClient, base_url: str, method: str, url: str, body: Any = None
) -> tuple[int, Any]:
    """What the service answers a request the app makes to `url` (under `base_url`)."""
    if not url.startswith(base_url):
        raise ExportError(f"a sample request left the base URL: {url}")
    response = await client.request(method, url[len(base_url) :], json=body)
    return response.status_code, response.json()


@dataclass
class CaseFiles:
    folder: str
    files: dict[str, Any] = field(default_factory=dict)  # name -> JSON value, or text (.txt)


async def _pull_files(
    case: PullCase, client: httpx.AsyncClient, base_url: str
) -> tuple[CaseFiles, list[Any] | None]:
    out = CaseFiles(case.folder, {"customer.json": case.customer})
    url = lookup_url(base_url, case.customer)
    if url is None:  # the template stops with loopdesk's message
        out.files["expected_request_url.txt"] = json.dumps(NO_EMAIL_MESSAGES[case.pull])
        return out, None
    status, answer = await ask(client, base_url, "GET", url)
    if status != 200:
        raise ExportError(f"the sample lookup {url} answered HTTP {status}: {answer!r:.200}")
    objects = pull_output(case.pull, answer)
    out.files.update(
        {
            "expected_request_url.txt": url,
            "rawData.json": answer,
            "expected_response_transformation.json": objects,
        }
    )
    if objects:
        out.files["externalData.json"] = {DATA_TYPES[case.pull]: objects}
        out.files["expected_external_id.txt"] = "\n".join(str(o["id"]) for o in objects)
        if case.pull == "returns":
            out.files["expected_external_updated_at.txt"] = "\n".join(
                o["updatedAt"] for o in objects
            )
    return out, objects


async def _action_files(case: ActionCase, client: httpx.AsyncClient, base_url: str) -> CaseFiles:
    method, _ = ACTION_PATHS[case.action]
    url = action_url(base_url, case.action, case.inputs)
    body = action_body(case.action, case.inputs)
    status, answer = await ask(client, base_url, method, url, body)
    out = CaseFiles(case.folder, {"inputs.json": case.inputs, "expected_request_url.txt": url})
    if body is not None:
        out.files["expected_request_body.json"] = body
    out.files.update(
        {
            "response.json": {"statusCode": status},
            "rawData.json": answer,
            "expected_response_transformation.json": action_output(status, answer),
        }
    )
    return out


async def _draft_files(case: DraftCase, client: httpx.AsyncClient, base_url: str) -> CaseFiles:
    """A draft step's case: its draft made first (`Given`), then the step asked."""
    ids = await prepare(client, case.given) if case.given is not None else {}
    inputs = filled(case.inputs, ids)
    method = "GET" if case.action == DETAILS_ACTION else DRAFT_ACTIONS[case.action].method
    url = draft_action_url(base_url, case.action, inputs)
    body = draft_action_body(case.action, inputs)
    status, answer = await ask(client, base_url, method, url, body)
    if status != expected_status(case):
        raise ExportError(
            f"the sample {case.folder} answered HTTP {status}, not {expected_status(case)}: "
            f"{answer!r:.300}"
        )
    out = CaseFiles(case.folder, {"inputs.json": inputs, "expected_request_url.txt": url})
    if body is not None:
        out.files["expected_request_body.json"] = body
    output = (
        action_output(status, answer)
        if case.action == DETAILS_ACTION
        else draft_action_output(status, answer)
    )
    out.files.update(
        {
            "response.json": {"statusCode": status},
            "rawData.json": answer,
            "expected_response_transformation.json": output,
        }
    )
    return out


def draft_cases(*, drafts: bool) -> tuple[DraftCase, ...]:
    """The draft cases of an app with (or without) the draft steps."""
    return tuple(c for c in DRAFT_CASES if drafts or c.action == DETAILS_ACTION)


async def sample_files(base_url: str, settings: Settings, *, drafts: bool = True) -> dict[str, Any]:
    """Every `_test_` file of the app: path -> JSON value or text."""
    files: dict[str, Any] = {}
    cards: dict[str, list[Any]] = {}
    cases: list[PullCase | ActionCase | DraftCase] = [
        *PULL_CASES,
        *ACTION_CASES,
        *draft_cases(drafts=drafts),
    ]
    async with sample_service(settings) as client:
        for case in sorted(cases, key=lambda c: c.folder):
            if isinstance(case, PullCase):
                out, objects = await _pull_files(case, client, base_url)
                if case.name == "success" and objects is not None:
                    cards[case.pull] = objects
            elif isinstance(case, DraftCase):
                out = await _draft_files(case, client, base_url)
            else:
                out = await _action_files(case, client, base_url)
            files.update({f"{out.folder}/{name}": value for name, value in out.files.items()})
    for kind, objects in cards.items():  # the cards show what the pulls give
        files[f"ui/templates/{kind}/_test_/default.json"] = objects
    for folder in sorted({c.folder.rsplit("/", 1)[0] for c in cases}):
        files[f"{folder}/integration.json"] = TEST_INTEGRATION
    headers = f"authentication/headers/{TEST_DIR}"
    files[f"{headers}/integration.json"] = TEST_INTEGRATION
    files[f"{headers}/success/expected_Authorization.txt"] = "Bearer test-api-key"
    files[f"{headers}/missing_key/integration.json"] = {"configuration": {}, "secrets": {}}
    files[f"{headers}/missing_key/expected_Authorization.txt"] = json.dumps(MISSING_KEY_MESSAGE)
    return files


def _text(value: Any, name: str) -> str:
    if name.endswith(".txt"):  # compared as the template's exact output
        return str(value).rstrip("\n")
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


# --- the export ---------------------------------------------------------------------


@dataclass(frozen=True)
class Exported:
    directory: Path
    files: list[str]
    pulls: list[str]
    actions: list[str]
    cases: int


async def export_app(
    directory: Path, base_url: str, *, settings: Settings, force: bool = False
) -> Exported:
    """Write the app into `directory`; nothing is written when a check or a sample
    fails (the samples are made first)."""
    base = check_base_url(base_url)
    check_target(directory, force=force)
    drafts = load_policy(settings.policy_file).returns.create_in_conversation
    files = render_templates(base, drafts=drafts)
    samples = await sample_files(base, settings, drafts=drafts)
    files.update({path: _text(value, path) for path, value in samples.items()})
    for relative, text in sorted(files.items()):
        path = directory / relative
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from None
    return Exported(
        directory=directory,
        files=sorted(files),
        pulls=list(DATA_TYPES),
        actions=[
            *ACTION_PATHS,
            *(DRAFT_ACTIONS if drafts else ()),
            DETAILS_ACTION,
        ],
        cases=len(PULL_CASES) + len(ACTION_CASES) + len(draft_cases(drafts=drafts)),
    )
