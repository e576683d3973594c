"""The Gladly App Platform app `loopdesk gladly export-app` writes, and the endpoints its
actions call.

The exported app is checked as Gladly would read it (every JSON file parses, both
GraphQL schemas build with graphql-core, no forward references, the cards' data sources
exist), its types against Gladly's own Loop apps (the peer's test data in
`tests/conformance`) and loopdesk's models, and each template's `_test_` data against a
fresh loopdesk over the sandbox asked the same request.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import types
import typing
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import graphql
import httpx
import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from loopdesk.api.routes.actions import ReturnLinkOut
from loopdesk.api.routes.app_actions import ExceptionRequestOut, ReturnsStatusOut
from loopdesk.api.routes.drafts import DraftView, ReturnDetailsOut
from loopdesk.cli.main import app as cli_app
from loopdesk.customers.profile import NO_EMAIL_MESSAGES
from loopdesk.domain.facts import FACTS
from loopdesk.domain.models import LoopReturn, Note, Order
from loopdesk.domain.timeline import ProcessingTimes, estimate
from loopdesk.gladly.draft_actions import DRAFT_CASES, DraftCase, expected_status, filled, prepare
from loopdesk.gladly.export import check_base_url, export_app, sample_service
from loopdesk.settings import Settings
from tests.conftest import CONFORMANCE

BASE = "https://desk.example.com/loopdesk"
VOLATILE = frozenset({"fetchedAt", "asOf", "decidedAt"})  # moments of the call itself
PLATFORM = """
scalar DateTime
scalar Currency
directive @dataType(name: String!, version: String!) on OBJECT
directive @parentId(template: String!) on FIELD_DEFINITION
directive @childIds(template: String!) on FIELD_DEFINITION
directive @action(name: String!) on FIELD_DEFINITION
"""
BUILT_IN_SCALARS = {"String", "Int", "Float", "Boolean", "ID", "DateTime", "Currency"}
runner = CliRunner()


@pytest.fixture(autouse=True)
def _sandbox_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("LOOPDESK_") and name != "LOOPDESK_LOG_LEVEL":
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("gladly") / "app"
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("LOOPDESK_")}
    try:
        done = asyncio.run(export_app(target, BASE + "/", settings=Settings()))
    finally:
        os.environ.update(saved)
    assert done.directory == target and len(done.files) > 50
    return target


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _schema(exported: Path, name: str) -> graphql.GraphQLSchema:
    return graphql.build_schema(PLATFORM + (exported / name).read_text(encoding="utf-8"))


# --- the layout, JSON and GraphQL ---------------------------------------------------


def test_the_layout_is_that_of_gladlys_loop_apps(exported: Path) -> None:
    for path in (
        "manifest.json",
        "authentication/headers/Authorization.gtpl",
        "data/data_schema.graphql",
        "actions/actions_schema.graphql",
        "ui/admin/form.json",
    ):
        assert (exported / path).is_file(), path
    for pull, templates in (
        ("returns", {"external_id", "external_updated_at"}),
        ("orders", {"external_id"}),
    ):
        folder = exported / "data/pull" / pull
        names = {p.stem for p in folder.glob("*.gtpl")}
        assert names == {"request_url", "response_transformation", *templates}
        assert (folder / "config.json").is_file() and (folder / "_test_/data").is_dir()
    for action in (*ACTION_REQUESTS, *DRAFT_REQUESTS):
        folder = exported / "actions" / action
        assert {"request_url", "response_transformation"} <= {p.stem for p in folder.glob("*")}
        assert (folder / "_test_/data").is_dir()
    for card in ("returns", "orders"):
        folder = exported / "ui/templates" / card
        assert {p.name for p in folder.iterdir()} == {"config.json", "flexible.card", "_test_"}
    manifest = _json(exported / "manifest.json")
    assert set(manifest) == {"author", "appName", "version", "description"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", manifest["version"])


def test_every_json_file_parses(exported: Path) -> None:
    files = sorted(exported.rglob("*.json"))
    assert len(files) > 40
    for path in files:
        _json(path)  # raises on a file that is not JSON
    for path in exported.rglob("*.card"):
        ET.fromstring(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", ["data/data_schema.graphql", "actions/actions_schema.graphql"])
def test_the_schemas_parse_with_graphql_core(exported: Path, name: str) -> None:
    text = (exported / name).read_text(encoding="utf-8")
    document = graphql.parse(text)
    schema = graphql.build_schema(PLATFORM + text)
    assert schema.query_type is not None
    # The App Platform's own limits: no unions, and no type used before it is declared.
    declared = set(BUILT_IN_SCALARS)
    for definition in document.definitions:
        assert not isinstance(definition, graphql.UnionTypeDefinitionNode)
        if isinstance(definition, graphql.ObjectTypeDefinitionNode):
            for fld in definition.fields or ():
                used = fld.type
                while not isinstance(used, graphql.NamedTypeNode):
                    used = used.type  # type: ignore[attr-defined]
                assert used.name.value in declared, (definition.name.value, fld.name.value)
            declared.add(definition.name.value)


def test_data_types_and_actions_are_bound(exported: Path) -> None:
    schema = _schema(exported, "data/data_schema.graphql")
    bound = {}
    for type_name in ("LoopReturn", "Order"):
        node = schema.type_map[type_name].ast_node
        assert node is not None
        (directive,) = [d for d in node.directives or () if d.name.value == "dataType"]
        args = {a.name.value: a.value.value for a in directive.arguments}  # type: ignore[attr-defined]
        bound[args["name"]] = args["version"]
    pulls = {
        _json(p)["dataType"]["name"]: _json(p)["dataType"]["version"]
        for p in exported.glob("data/pull/*/config.json")
    }
    assert pulls == bound == {"loopdesk_return": "1.0", "loopdesk_order": "1.0"}
    assert set(schema.query_type.fields) == {"returns", "orders"}  # type: ignore[union-attr]

    actions = _schema(exported, "actions/actions_schema.graphql")
    named = {}
    for root in (actions.query_type, actions.mutation_type):
        assert root is not None
        for field_name, fld in root.fields.items():
            (directive,) = fld.ast_node.directives  # type: ignore[union-attr]
            named[directive.arguments[0].value.value] = field_name  # type: ignore[attr-defined]
    folders = {p.name for p in (exported / "actions").iterdir() if p.is_dir()}
    assert set(named) == folders
    assert named == {
        "return_status": "returnStatus",
        "create_return_link": "createReturnLink",
        "request_exception": "requestException",
        "get_return_details": "getReturnDetails",
        "check_eligibility": "checkEligibility",
        "get_draft_return": "getDraftReturn",
        "add_return_item": "addReturnItem",
        "remove_return_item": "removeReturnItem",
        "set_return_reason": "setReturnReason",
        "set_return_type": "setReturnType",
        "add_exchange_item": "addExchangeItem",
        "finalize_items": "finalizeItems",
        "get_draft_totals": "getDraftTotals",
        "set_credit_type": "setCreditType",
        "select_return_method": "selectReturnMethod",
        "submit_return": "submitReturn",
        "cancel_draft_return": "cancelDraftReturn",
    }
    # Reads are queries; whatever changes something (in Loop or the ledger) a mutation.
    assert set(actions.query_type.fields) == {  # type: ignore[union-attr]
        "returnStatus",
        "createReturnLink",
        "getReturnDetails",
        "getDraftReturn",
        "getDraftTotals",
    }
    assert len(actions.mutation_type.fields) == 12  # type: ignore[union-attr]
    for config in exported.glob("actions/*/config.json"):
        method = _json(config)["httpMethod"]
        action = config.parent.name
        assert method == {**ACTION_REQUESTS, **DRAFT_REQUESTS}[action][0], action


def test_the_draft_steps_are_those_of_gladlys_loop_returns_app(exported: Path) -> None:
    """Every action of the peer's 1.6 app has its step here (the link and allowlist
    ones as the existing actions), under the peer's name."""
    peer = {p.name for p in (CONFORMANCE / "loop_returns-1.6/actions").iterdir() if p.is_dir()}
    ours = {p.name for p in (exported / "actions").iterdir() if p.is_dir()}
    assert peer - {"generate_return_link", "create_allowlist_item"} <= ours
    assert ours - peer == {
        "return_status",
        "create_return_link",
        "request_exception",
        "remove_return_item",
    }


# --- the shapes ---------------------------------------------------------------------


def _peer_objects(pattern: str) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for path in sorted(CONFORMANCE.glob(pattern)):
        objects += _json(path)
    assert objects, pattern
    return objects


def _fields_used(objects: list[Any], prefix: str = "") -> set[str]:
    """Every field path the peer's objects hold: `return.items[].cost.price` ..."""
    paths: set[str] = set()
    for obj in objects:
        for key, value in obj.items():
            paths.add(prefix + key)
            if isinstance(value, dict):
                paths |= _fields_used([value], f"{prefix}{key}.")
            elif isinstance(value, list) and value and isinstance(value[0], dict):
                paths |= _fields_used(value, f"{prefix}{key}[].")
    return paths


def _unwrap(kind: graphql.GraphQLOutputType) -> graphql.GraphQLNamedType:
    while isinstance(kind, graphql.GraphQLNonNull | graphql.GraphQLList):
        kind = kind.of_type
    return kind


def _schema_paths(kind: graphql.GraphQLObjectType, prefix: str = "", *, skip: set[str]) -> set[str]:
    paths: set[str] = set()
    for name, fld in kind.fields.items():
        if name in skip:
            continue
        paths.add(prefix + name)
        inner = fld.type.of_type if graphql.is_non_null_type(fld.type) else fld.type
        named = _unwrap(fld.type)
        if isinstance(named, graphql.GraphQLObjectType):
            step = f"{name}[]." if graphql.is_list_type(inner) else f"{name}."
            paths |= _schema_paths(named, prefix + step, skip=skip)
    return paths


def test_the_shapes_match_gladlys_loop_return_and_order(exported: Path) -> None:
    """The peer's `LoopReturn` (its returns pull, its notes by `@parentId`) and its
    Order Tracking `Order`: field for field, at every depth; ours add `facts`."""
    schema = _schema(exported, "data/data_schema.graphql")
    loop_return = schema.type_map["LoopReturn"]
    order = schema.type_map["Order"]
    assert isinstance(loop_return, graphql.GraphQLObjectType)
    assert isinstance(order, graphql.GraphQLObjectType)

    returns = _peer_objects("loop_returns*/data/pull/returns/_test_/data/*/expected_*.json")
    notes = _peer_objects("loop_returns*/data/pull/notes/_test_/data/*/expected_*.json")
    peer_return = _fields_used(returns) | {"notes"} | _fields_used(notes, "notes[].")
    assert _schema_paths(loop_return, skip={"facts"}) == peer_return
    orders = _peer_objects("loop_order_tracking/data/pull/orders/_test_/data/*/expected_*.json")
    assert _schema_paths(order, skip={"facts"}) == _fields_used(orders)

    for kind in (loop_return, order):
        facts = _unwrap(kind.fields["facts"].type)
        assert isinstance(facts, graphql.GraphQLObjectType)
        graphql_name = {bool: "Boolean", int: "Int", str: "String"}
        assert {n: str(f.type) for n, f in facts.fields.items()} == {
            f.name: f"{graphql_name[f.type]}!" for f in FACTS
        }


def _annotation_parts(annotation: Any) -> tuple[Any, bool]:
    """(the type without None, whether None is allowed)."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        assert len(args) == 1, annotation
        return args[0], True
    return annotation, False


SCALARS = {str: {"String", "ID", "DateTime", "Currency"}, bool: {"Boolean"}, int: {"Int"}}


def _matches_model(
    model: type[BaseModel],
    kind: graphql.GraphQLObjectType,
    *,
    extra: frozenset[str] = frozenset(),
    nullable_top: bool = False,
) -> None:
    """The GraphQL type has the model's fields (JSON names), nullability and scalars, at
    every depth; `extra` fields aside; `nullable_top`: every top field may be null."""
    fields = {info.alias or name: info for name, info in model.model_fields.items()}
    assert set(kind.fields) - extra == set(fields), kind.name
    for name, info in fields.items():
        declared = kind.fields[name].type
        base, optional = _annotation_parts(info.annotation)
        if not nullable_top:
            assert graphql.is_non_null_type(declared) != optional, (kind.name, name)
        inner = declared.of_type if graphql.is_non_null_type(declared) else declared
        if typing.get_origin(base) is list:
            assert graphql.is_list_type(inner), (kind.name, name)
            base = typing.get_args(base)[0]
            inner = inner.of_type  # type: ignore[union-attr]
            assert graphql.is_non_null_type(inner), (kind.name, name)
        named = _unwrap(inner)
        if isinstance(base, type) and issubclass(base, BaseModel):
            assert isinstance(named, graphql.GraphQLObjectType), (kind.name, name)
            _matches_model(base, named)
        else:
            assert named.name in SCALARS[base], (kind.name, name, named.name)
            if name.endswith("At") and base is str:
                assert named.name == "DateTime", (kind.name, name)


def test_the_types_are_loopdesks_models(exported: Path) -> None:
    data = _schema(exported, "data/data_schema.graphql")
    for model, type_name in ((LoopReturn, "LoopReturn"), (Order, "Order"), (Note, "ReturnNote")):
        kind = data.type_map[type_name]
        assert isinstance(kind, graphql.GraphQLObjectType)
        _matches_model(
            model, kind, extra=frozenset({"facts"}) if model is not Note else frozenset()
        )
    actions = _schema(exported, "actions/actions_schema.graphql")
    for model, type_name in (
        (ReturnsStatusOut, "ReturnStatusResult"),
        (ReturnLinkOut, "ReturnLinkResult"),
        (ExceptionRequestOut, "ExceptionResult"),
        (ReturnDetailsOut, "ReturnDetailsResult"),
        (DraftView, "DraftReturnResult"),
    ):
        kind = actions.type_map[type_name]
        assert isinstance(kind, graphql.GraphQLObjectType)
        _matches_model(model, kind, extra=frozenset({"error"}), nullable_top=True)
        error = _unwrap(kind.fields["error"].type)
        assert isinstance(error, graphql.GraphQLObjectType)
        if model is DraftView:  # with what helps the next step
            assert {n: str(f.type) for n, f in error.fields.items()} == {
                "code": "String!",
                "message": "String!",
                "nextSteps": "[String!]",
                "loopErrors": "[DraftLoopError!]",
                "outcomeUnknown": "Boolean",
            }
        else:
            assert set(error.fields) == {"code", "message"}
    # The enums are the API's choices.
    for enum, field_name in (("DraftReturnType", "returnType"), ("DraftCreditType", "creditType")):
        kind = actions.type_map[enum]
        assert isinstance(kind, graphql.GraphQLEnumType)
        model = {"returnType": "TypeIn", "creditType": "CreditTypeIn"}[field_name]
        from loopdesk.api.routes import drafts as draft_routes

        choices = typing.get_args(getattr(draft_routes, model).model_fields[field_name].annotation)
        assert set(kind.values) == set(choices)


# --- the templates ------------------------------------------------------------------

GO_WORDS = {"if", "else", "end", "range", "with", "define", "block", "template", "nil"}
GO_FUNCTIONS = {"and", "or", "not", "len", "index", "printf", "urlquery", "eq", "lt", "ge"}
SPRIG = {"list", "append", "lower", "trim", "uniq", "without", "pick", "toJson", "set"}
SPRIG |= {"dict", "int", "kindIs", "hasKey"}
APP_PLATFORM = {"fail", "stop"}
ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.S)


def _check_go_template(text: str, where: str) -> None:
    assert "[[" not in text and "[%" not in text, f"{where}: a Jinja delimiter was left"
    assert text.count("{{") == text.count("}}"), where
    depth = 0
    for match in ACTION.finditer(text):
        body = match.group(1)
        if body.startswith("/*"):
            assert body.endswith("*/"), where
            continue
        code = re.sub(r'"(?:[^"\\]|\\.)*"', '""', body)
        words = code.split()
        if words and words[0] in ("if", "range", "with", "define", "block"):
            depth += 1
        elif words and words[0] == "end":
            depth -= 1
            assert depth >= 0, where
        for name in re.findall(r"(?<![.$\w])[A-Za-z_]\w*", code):
            known = GO_WORDS | GO_FUNCTIONS | SPRIG | APP_PLATFORM
            assert name in known, f"{where}: unknown function {name!r}"
    assert depth == 0, where


def test_the_go_templates_are_well_formed_and_call_loopdesk(exported: Path) -> None:
    templates = sorted(exported.rglob("*.gtpl"))
    assert len(templates) >= 14
    for path in templates:
        _check_go_template(path.read_text(encoding="utf-8"), str(path.relative_to(exported)))
    for path in exported.rglob("request_url.gtpl"):
        code = re.sub(r"\{\{-? /\*.*?\*/ -?\}\}", "", path.read_text(), flags=re.S)
        lines = [ln for ln in code.splitlines() if ln and not ln.startswith("{{")]
        assert len(lines) == 1 and lines[0].startswith(BASE + "/v1/"), path
    header = (exported / "authentication/headers/Authorization.gtpl").read_text()
    assert header.endswith("\nBearer {{ .integration.secrets.apiKey }}")  # no line break
    for path in exported.rglob("expected_*.txt"):
        assert not path.read_text().endswith("\n"), path
    assert not list(exported.rglob("*.j2")) and not (exported / "_partials").exists()


def _card_paths(kind: graphql.GraphQLObjectType, path: str) -> graphql.GraphQLNamedType:
    current: graphql.GraphQLNamedType = kind
    for part in path.split("."):
        assert isinstance(current, graphql.GraphQLObjectType), path
        assert part in current.fields, f"{path}: {part} is not a field of {current.name}"
        current = _unwrap(current.fields[part].type)
    return current


def _walk_card(
    element: ET.Element, item: graphql.GraphQLObjectType, root: graphql.GraphQLObjectType
) -> int:
    checked = 0
    source = element.get("dataSource")
    inner = item
    if source is not None and source != "__data":
        base, path = (
            (root, source[len("__root.") :]) if source.startswith("__root.") else (item, source)
        )
        found = _card_paths(base, path)
        checked += 1
        if element.tag == "List":
            assert isinstance(found, graphql.GraphQLObjectType), source
            inner = found
    for child in element:
        checked += _walk_card(child, inner, root)
    return checked


@pytest.mark.parametrize(("card", "type_name"), [("returns", "LoopReturn"), ("orders", "Order")])
def test_the_cards_show_fields_of_their_type(exported: Path, card: str, type_name: str) -> None:
    schema = _schema(exported, "data/data_schema.graphql")
    kind = schema.type_map[type_name]
    assert isinstance(kind, graphql.GraphQLObjectType)
    folder = exported / "ui/templates" / card
    assert _json(folder / "config.json")["graphqlType"] == f"[{type_name}]"
    text = (folder / "flexible.card").read_text(encoding="utf-8")
    assert _walk_card(ET.fromstring(text), kind, kind) >= 3
    for path in re.findall(r"\{\{\s*(facts\.\w+)", text):
        _card_paths(kind, path)
    # The card's test data is what the data pull gives.
    pulled = _json(
        exported / f"data/pull/{card}/_test_/data/success/expected_response_transformation.json"
    )
    assert _json(folder / "_test_/default.json") == pulled


# --- the `_test_` data: what the running service answers ----------------------------


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "<call time>" if k in VOLATILE else _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def _addresses(customer: dict[str, Any]) -> list[str]:
    """The addresses Gladly's profile gives a pull: primary first, once each."""
    emails = [customer.get("primaryEmailAddress"), *(customer.get("emailAddresses") or [])]
    return list(dict.fromkeys(e.strip().lower() for e in emails if e and e.strip()))


def _cases(exported: Path) -> list[Path]:
    return sorted(
        p.parent
        for p in exported.glob("*/**/_test_/data/*/expected_request_url.txt")
        if not p.is_relative_to(exported / "ui")
    )


async def _fresh_call(
    client: httpx.AsyncClient, method: str, url: str, body: Any = None
) -> tuple[int, Any]:
    assert url.startswith(BASE + "/"), url
    response = await client.request(method, url[len(BASE) :], json=body)
    return response.status_code, response.json()


async def test_each_cases_data_is_what_the_service_answers(exported: Path) -> None:
    cases = _cases(exported)
    seen: dict[str, set[str]] = {}
    async with sample_service(Settings()) as client:
        for case in cases:  # in the order of the folders, as the export asked them
            parts = case.relative_to(exported).parts
            owner = parts[2] if parts[0] == "data" else parts[1]
            seen.setdefault(owner, set()).add(case.name)
            if parts[0] == "data":
                await _check_pull(client, case, owner)
            elif owner in DRAFT_REQUESTS:
                await _check_draft_action(client, case, owner)
            else:
                await _check_action(client, case, owner)
    drafts: dict[str, set[str]] = {}
    for draft_case in DRAFT_CASES:
        drafts.setdefault(draft_case.action, set()).add(draft_case.name)
    assert seen == {
        "returns": {"success", "unknown_customer", "no_customer_email"},
        "orders": {"success", "no_customer_email"},
        "return_status": {"success", "one_order", "bad_email"},
        "create_return_link": {"success", "wrong_zip"},
        "request_exception": {"granted", "refused", "vip_by_tag"},
        **drafts,
    }
    assert set(drafts) == set(DRAFT_REQUESTS)  # a case for every draft step


async def _check_pull(client: httpx.AsyncClient, case: Path, kind: str) -> None:
    customer = _json(case / "customer.json")
    expected_url = (case / "expected_request_url.txt").read_text().strip()
    emails = _addresses(customer)
    if not emails:  # the template stops, with the peer's words
        assert json.loads(expected_url) == NO_EMAIL_MESSAGES[kind]
        assert not (case / "rawData.json").exists()
        return
    query = "&".join(f"email={quote_plus(e)}" for e in emails)
    assert expected_url == f"{BASE}/v1/customers/lookup?{query}"
    status, fresh = await _fresh_call(client, "GET", expected_url)
    assert status == 200
    assert _masked(_json(case / "rawData.json")) == _masked(fresh), case
    output = [{**item, "facts": fresh["facts"]} for item in fresh[kind]]
    assert _json(case / "expected_response_transformation.json") == output, case
    if output:
        ids = (case / "expected_external_id.txt").read_text().split("\n")
        assert [i.strip() for i in ids if i.strip()] == [o["id"] for o in output]
        data_type = "loopdesk_return" if kind == "returns" else "loopdesk_order"
        assert _json(case / "externalData.json") == {data_type: output}
    if case.name == "success":
        assert output and all(set(o["facts"]) == {f.name for f in FACTS} for o in output)
        if kind == "returns":
            assert any(r["notes"] for r in output), "the demo customer's returns have notes"


ACTION_REQUESTS = {
    "return_status": ("GET", "/v1/returns/status"),
    "create_return_link": ("POST", "/v1/actions/return-link"),
    "request_exception": ("POST", "/v1/exceptions/requests"),
}


async def _check_action(client: httpx.AsyncClient, case: Path, action: str) -> None:
    inputs = _json(case / "inputs.json")
    method, path = ACTION_REQUESTS[action]
    url = BASE + path
    body: Any = None
    if action == "return_status":
        url += "?" + "&".join(f"email={quote_plus(e)}" for e in inputs["emails"])
        if inputs.get("orderName"):
            url += "&order=" + quote_plus(inputs["orderName"])
    elif action == "create_return_link":
        body = {"orderName": inputs["orderName"], "zip": inputs["zip"]}
    else:
        body = {"emails": inputs["emails"], "orderName": inputs["orderName"]}
        if "vip" in inputs:
            body["vip"] = inputs["vip"]
        if inputs.get("tags"):
            body["attributes"] = {"tags": inputs["tags"]}
        if inputs.get("conversationId"):
            body["conversationId"] = inputs["conversationId"]
    assert (case / "expected_request_url.txt").read_text().strip() == url
    if body is not None:
        assert _json(case / "expected_request_body.json") == body
    status, fresh = await _fresh_call(client, method, url, body)
    assert _json(case / "response.json") == {"statusCode": status}
    assert _masked(_json(case / "rawData.json")) == _masked(fresh), case
    if 200 <= status < 300:
        expected = fresh
    else:
        expected = {"error": {"code": fresh["error"]["code"], "message": fresh["error"]["message"]}}
    assert _masked(_json(case / "expected_response_transformation.json")) == _masked(expected)
    outcome = {
        "success": 200,
        "one_order": 200,
        "bad_email": 422,
        "wrong_zip": 400,
        "granted": 200,
        "refused": 200,
        "vip_by_tag": 200,
    }
    assert status == outcome[case.name], (case, fresh)
    if action == "request_exception":
        want = {"granted": "granted", "refused": "refused", "vip_by_tag": "granted"}[case.name]
        assert fresh["outcome"] == want
        assert fresh["vip"] is (case.name == "vip_by_tag")


DRAFT_REQUESTS = {
    "check_eligibility": ("POST", "/v1/drafts"),
    "get_draft_return": ("GET", "/v1/drafts/{d}"),
    "add_return_item": ("POST", "/v1/drafts/{d}/items"),
    "remove_return_item": ("DELETE", "/v1/drafts/{d}/items/{i}"),
    "set_return_reason": ("POST", "/v1/drafts/{d}/items/{i}/reason"),
    "set_return_type": ("POST", "/v1/drafts/{d}/items/{i}/type"),
    "add_exchange_item": ("POST", "/v1/drafts/{d}/items/{i}/exchange"),
    "finalize_items": ("POST", "/v1/drafts/{d}/finalize"),
    "get_draft_totals": ("GET", "/v1/drafts/{d}/totals"),
    "set_credit_type": ("POST", "/v1/drafts/{d}/credit-type"),
    "select_return_method": ("POST", "/v1/drafts/{d}/return-method"),
    "submit_return": ("POST", "/v1/drafts/{d}/submit"),
    "cancel_draft_return": ("POST", "/v1/drafts/{d}/cancel"),
    "get_return_details": ("GET", "/v1/returns/details"),
}
# What each step sends: the inputs' names (an empty object where none), or no body.
DRAFT_BODIES: dict[str, tuple[str, ...] | None] = {
    "check_eligibility": ("orderName", "secondaryInput"),
    "add_return_item": ("orderLineItemId",),
    "set_return_reason": ("reasonId",),
    "set_return_type": ("returnType",),
    "add_exchange_item": ("variantId",),
    "finalize_items": (),
    "set_credit_type": ("creditType",),
    "select_return_method": ("returnMethodId",),
    "submit_return": (),
    "cancel_draft_return": (),
}


def _draft_case(case: Path, action: str) -> DraftCase:
    (found,) = [c for c in DRAFT_CASES if (c.action, c.name) == (action, case.name)]
    return found


async def _check_draft_action(client: httpx.AsyncClient, case: Path, action: str) -> None:
    """A draft step's case: the draft it starts from made again, then its request."""
    described = _draft_case(case, action)
    ids = await prepare(client, described.given) if described.given is not None else {}
    inputs = _json(case / "inputs.json")
    assert inputs == filled(described.inputs, ids)  # the same ids on every fresh run
    method, path = DRAFT_REQUESTS[action]
    url = BASE + path.format(d=inputs.get("draftReturnId"), i=inputs.get("returningItemId"))
    if action == "get_return_details":
        query = [
            f"{name}={quote_plus(inputs[name])}"
            for name in ("returnId", "orderId", "orderName", "currencyType")
            if inputs.get(name)
        ]
        url += ("?" + "&".join(query)) if query else ""
    names = DRAFT_BODIES.get(action)
    body: Any = None if names is None else {n: inputs[n] for n in names}
    if action == "check_eligibility" and inputs.get("conversationId"):
        body["conversationId"] = inputs["conversationId"]
    assert (case / "expected_request_url.txt").read_text().strip() == url
    if body is not None:
        assert _json(case / "expected_request_body.json") == body
    else:
        assert not (case / "expected_request_body.json").exists()
    status, fresh = await _fresh_call(client, method, url, body)
    assert _json(case / "response.json") == {"statusCode": status}
    assert status == expected_status(described), (case, fresh)
    assert _json(case / "rawData.json") == fresh, case
    expected = fresh
    if status >= 300:
        error = fresh["error"]
        expected = {"error": {"code": error["code"], "message": error["message"]}}
        details = error["details"]
        if action != "get_return_details":
            for key, name in (("nextSteps", "nextSteps"), ("outcomeUnknown", "outcomeUnknown")):
                if key in details:
                    expected["error"][name] = details[key]
            if error["code"] == "loop_validation_error":
                expected["error"]["loopErrors"] = details["errors"]
    assert _json(case / "expected_response_transformation.json") == expected, case
    # What each case shows.
    shown = {
        ("check_eligibility", "final_sale"): lambda b: (
            {i["id"]: i["ineligibilityCode"] for i in b["lineItems"]}
            == {"7104001": "final-sale", "7104002": None}
        ),
        ("get_draft_return", "exchange_options"): lambda b: b["exchangeOptions"][0]["variants"],
        ("add_exchange_item", "sold_out"): lambda b: (
            b["error"]["loopErrors"] == [{"message": "variant not available for exchange"}]
        ),
        ("finalize_items", "not_offered"): lambda b: (
            b["error"]["nextSteps"] == ["add-returning-item", "cancel-draft-return"]
        ),
        ("get_draft_totals", "amount_due"): lambda b: b["totals"]["amountDue"]["amount"] == 1500,
        ("submit_return", "success"): lambda b: b["returnId"] and b["statusPageUrl"],
        ("submit_return", "amount_due"): lambda b: (
            "submit-draft-return" not in b["error"]["nextSteps"]
        ),
        ("check_eligibility", "wrong_zip"): lambda b: (
            b["error"]["loopErrors"][0]["code"] == "secondary-input-mismatch"
        ),
    }
    check = shown.get((action, case.name))
    if check is not None:
        assert check(expected), (case, expected)


async def test_without_drafts_in_the_policy_the_app_has_no_draft_steps(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("[returns]\ncreate_in_conversation = false\n")
    done = await export_app(tmp_path / "app", BASE, settings=Settings(policy_file=policy))
    folders = {p.name for p in (tmp_path / "app/actions").iterdir() if p.is_dir()}
    assert folders == {*ACTION_REQUESTS, "get_return_details"}
    assert set(done.actions) == folders
    schema = _schema(tmp_path / "app", "actions/actions_schema.graphql")
    assert set(schema.mutation_type.fields) == {"requestException"}  # type: ignore[union-attr]
    assert "DraftReturnResult" not in schema.type_map and "ReturnDetailsResult" in schema.type_map


def test_the_header_test_data(exported: Path) -> None:
    root = exported / "authentication/headers/_test_/data"
    key = _json(root / "integration.json")["secrets"]["apiKey"]
    assert (root / "success/expected_Authorization.txt").read_text().strip() == f"Bearer {key}"
    missing = json.loads((root / "missing_key/expected_Authorization.txt").read_text())
    assert missing in (exported / "authentication/headers/Authorization.gtpl").read_text()


# --- the endpoints the actions call ---------------------------------------------------

KEY = "gladly-app-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
DEMO = ["primary@email.com", "secondary@email.com"]


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    from loopdesk.api.app import create_app

    policy = tmp_path / "policy.toml"
    policy.write_text("[exceptions]\ngrace_days = 2\n\n[processing]\nrefund_to_account = 9\n")
    settings = Settings(
        api_key=KEY,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/app.db",
        sandbox_rate_limit_per_minute=0,
        sandbox_webhooks_to_self=False,
        policy_file=policy,
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        yield client, app


async def test_return_status_follows_the_policys_processing_times(
    service: tuple[httpx.AsyncClient, Any],
) -> None:
    client, app = service
    assert (await client.get("/v1/returns/status", params={"email": DEMO})).status_code == 401
    answer = await client.get("/v1/returns/status", params={"email": DEMO}, headers=AUTH)
    assert answer.status_code == 200
    body = answer.json()
    assert body["stale"] is False and len(body["returns"]) == 8
    view = await app.state.customers.lookup(DEMO)
    processing = app.state.policy.processing
    assert processing.refund_to_account == 9 != ProcessingTimes().refund_to_account
    for shown, ret in zip(body["returns"], view.returns, strict=True):
        assert shown["id"] == ret.id and shown["statusPageUrl"] == ret.shipping.statusPageUrl
        landing = estimate(ret, processing, datetime.now(UTC))
        assert shown["estimate"] == (landing.to_json() if landing else None)
    refunds = [
        r["estimate"]
        for r in body["returns"]
        if r["estimate"] and r["estimate"]["kind"] == "refund"
    ]
    assert refunds and all(
        s["days"] == 9 for e in refunds for s in e["steps"] if s["name"] == "refund_to_account"
    )
    assert {r["stage"] for r in body["returns"]} >= {"cancelled", "on_its_way"}

    one = await client.get(
        "/v1/returns/status", params={"email": DEMO, "order": "1086"}, headers=AUTH
    )
    assert {r["orderName"] for r in one.json()["returns"]} == {"#1086"}
    for bad in ({"email": "nope"}, {}, {"email": DEMO, "order": "a\x00b"}):
        refused = await client.get("/v1/returns/status", params=bad, headers=AUTH)
        assert refused.status_code == 422, bad
        assert refused.json()["error"]["code"] == "invalid_input"


async def test_an_exception_request_is_decided_by_the_policy(
    service: tuple[httpx.AsyncClient, Any],
) -> None:
    client, _ = service
    path = "/v1/exceptions/requests"
    grace = {"emails": ["in.grace@example.com"], "orderName": "#7001"}
    assert (await client.post(path, json=grace)).status_code == 401
    # Delivered 33 days ago: past the 30-day window and this policy's 2 days of grace.
    refused = (await client.post(path, json=grace, headers=AUTH)).json()
    assert refused["outcome"] == "refused" and refused["granted"] is False
    assert refused["reason"].startswith("Order #7001 was delivered on")
    assert "exception up to" in refused["reason"] and refused["why"] == refused["reason"]
    assert [c["name"] for c in refused["criteria"] if not c["held"]] == [
        "within_window",
        "within_grace",
    ]
    # A VIP (tag, as the policy's [vip] says) gets twice the grace: 4 days, eligible.
    vip = {**grace, "attributes": {"tags": ["vip"]}, "conversationId": "gladly-1"}
    granted = (await client.post(path, json=vip, headers=AUTH)).json()
    assert granted["outcome"] == "granted" and granted["granted"] is True
    assert granted["vip"] is True and granted["allowlistId"] and granted["reason"] == ""
    assert "4 days of grace (VIP)" in granted["why"]
    again = (await client.post(path, json={**grace, "vip": True}, headers=AUTH)).json()
    assert again["outcome"] == "already_granted" and again["allowlistId"] == granted["allowlistId"]

    ledger = (await client.get("/v1/exceptions", params={"order": "7001"}, headers=AUTH)).json()
    assert [i["outcome"] for i in ledger["items"]] == ["already_granted", "granted", "refused"]
    assert ledger["items"][1]["conversationId"] == "gladly-1"
    audit = (await client.get("/v1/audit", params={"action": "allowlist.add"}, headers=AUTH)).json()
    assert [i["inputs"]["value"] for i in audit["items"]] == ["#7001"]

    for bad in (
        {"emails": [], "orderName": "#7001"},
        {"emails": ["not an email"], "orderName": "#7001"},
        {"emails": ["a@b.co"], "orderName": " "},
        {"emails": ["a@b.co"], "orderName": "#1", "vip": "maybe"},
        {"emails": ["a@b.co"], "orderName": "#1", "conversationId": "a\x00b"},
        {"emails": ["a@b.co"], "orderName": "#1", "conversationId": "c" * 129},
    ):
        answer = await client.post(path, json=bad, headers=AUTH)
        assert answer.status_code == 422, bad
    unknown = (
        await client.post(path, json={"emails": ["a@b.co"], "orderName": "#424242"}, headers=AUTH)
    ).json()
    assert unknown["outcome"] == "unknown" and unknown["reason"]


# --- the command --------------------------------------------------------------------


def _invoke(*args: str) -> Any:
    return runner.invoke(cli_app, ["gladly", "export-app", *args])


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)  # no stray loopdesk.toml
    yield tmp_path


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("desk.example.com", "https://"),
        ("ftp://desk.example.com", "https://"),
        ("https://", "with a host"),
        ("https://user:pw@desk.example.com", "credentials"),
        ("https://desk.example.com/?x=1", "query"),
        ("https://desk.example.com:99999", "not a URL"),
        ('https://desk.example.com/"{{x}}', "characters"),
        ("https://desk example.com", "characters"),
    ],
)
def test_a_bad_base_url_is_refused(in_tmp: Path, url: str, message: str) -> None:
    result = _invoke(str(in_tmp / "app"), "--base-url", url)
    assert result.exit_code == 2, result.stdout
    assert message in result.stderr and result.stdout == ""
    assert not (in_tmp / "app").exists()


def test_check_base_url_keeps_a_path_without_its_slash() -> None:
    assert check_base_url(" https://desk.example.com/loopdesk/ ") == BASE


def test_the_target_folder_is_checked(in_tmp: Path) -> None:
    full = in_tmp / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    result = _invoke(str(full), "--base-url", BASE)
    assert result.exit_code == 1 and "not empty" in result.stderr and "--force" in result.stderr
    assert sorted(p.name for p in full.iterdir()) == ["keep.txt"] and result.stdout == ""

    a_file = in_tmp / "file.txt"
    a_file.write_text("x")
    for target in (a_file, a_file / "app"):
        result = _invoke(str(target), "--base-url", BASE)
        assert result.exit_code == 1 and "not a folder" in result.stderr, target

    if os.geteuid() != 0:  # root writes anywhere
        locked = in_tmp / "locked"
        locked.mkdir(mode=0o500)
        result = _invoke(str(locked / "app"), "--base-url", BASE)
        assert result.exit_code == 1 and "not writable" in result.stderr

    result = _invoke(str(full), "--base-url", BASE, "--force")
    assert result.exit_code == 0, result.stderr
    assert "wrote the Gladly app" in result.stdout and (full / "manifest.json").is_file()
    assert (full / "keep.txt").read_text() == "mine"


def test_an_http_url_is_written_with_a_note(in_tmp: Path) -> None:
    result = _invoke("app", "--base-url", "http://127.0.0.1:8000")
    assert result.exit_code == 0, result.stderr
    assert "https" in result.stderr
    url = (in_tmp / "app/actions/create_return_link/request_url.gtpl").read_text().strip()
    assert url == "http://127.0.0.1:8000/v1/actions/return-link"
