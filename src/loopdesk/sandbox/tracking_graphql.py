"""Loop Order Tracking's GraphQL endpoint, as far as the public record shows it.

Only `orders(input: {customerEmails})` is known (reference section 8.1); the schema
below is that plus a few optional shipment fields. Errors come back as HTTP 200 with
`{"data": null, "errors": [...]}`, as GraphQL servers do.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLError,
    build_schema,
    execute_sync,
    parse,
    validate,
)
from starlette.requests import Request
from starlette.responses import Response

from loopdesk.sandbox.responses import json_body, json_response
from loopdesk.sandbox.world import World

SCHEMA = build_schema(
    """
    type Query {
      orders(input: OrdersInput!): [Order!]!
    }
    input OrdersInput {
      customerEmails: [String!]!
    }
    type Order {
      name: String!
      createdAt: String
      shipments: [Shipment!]!
    }
    type Shipment {
      trackingCode: String!
      status: String!
      carrierDisplayName: String!
      trackingUrl: String
      eta: String
      deliveredAt: String
    }
    """
)


@lru_cache(maxsize=256)
def _document(query: str) -> DocumentNode | tuple[GraphQLError, ...]:
    """Parsed and validated once per distinct query: clients send the same one each time."""
    try:
        document = parse(query)
    except GraphQLError as exc:
        return (exc,)
    errors = validate(SCHEMA, document)
    return tuple(errors) if errors else document


def _orders_resolver(world: World) -> Any:
    def orders(_info: object, input: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {"name": o["name"], "createdAt": o["created_at"], "shipments": o["shipments"]}
            for o in world.orders_for_emails(input["customerEmails"])
        ]

    return orders


def _errors(errors: list[GraphQLError] | tuple[GraphQLError, ...]) -> list[dict[str, Any]]:
    return [dict(e.formatted) for e in errors]


async def graphql_endpoint(request: Request) -> Response:
    ok, payload = await json_body(request)
    if not ok or not isinstance(payload, dict):
        return json_response({"message": "Invalid request."}, 400)
    query, variables = payload.get("query"), payload.get("variables")
    if not isinstance(query, str) or not query.strip():
        return json_response({"data": None, "errors": [{"message": "Must provide query string."}]})
    if variables is not None and not isinstance(variables, dict):
        message = "Variables must be provided as an object."
        return json_response({"data": None, "errors": [{"message": message}]})
    document = _document(query)
    if isinstance(document, tuple):
        return json_response({"data": None, "errors": _errors(document)})
    world: World = request.app.state.world
    operation = payload.get("operationName")
    result = execute_sync(
        SCHEMA,
        document,
        root_value={"orders": _orders_resolver(world)},
        variable_values=variables,
        operation_name=operation if isinstance(operation, str) else None,
    )
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = _errors(result.errors)
    return json_response(body)
