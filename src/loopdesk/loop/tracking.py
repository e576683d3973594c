"""Loop Order Tracking (formerly Wonderment) client: the GraphQL orders query and REST search."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from pydantic import SecretStr

from loopdesk.domain.upstream_errors import upstream_message
from loopdesk.errors import LoopError
from loopdesk.loop.client import UpstreamClient
from loopdesk.settings import Settings

# Verbatim from Gladly's Loop Order Tracking app: the peer's fixtures pin this text.
ORDERS_QUERY = (
    "query fetchGladlyOrderInformation($emails: [String!]!) "
    "{ orders(input: {customerEmails: $emails}) "
    "{ name shipments { trackingCode status carrierDisplayName } } }"
)


class OrderTrackingClient(UpstreamClient):
    service = "Loop Order Tracking"
    auth_header = "x-wonderment-access-token"

    @classmethod
    def configured(cls, settings: Settings) -> tuple[str, SecretStr | None]:
        return settings.order_tracking_base_url, settings.order_tracking_token

    async def orders_for_emails(self, emails: list[str]) -> Any:
        """Orders and shipments of a customer's addresses: the decoded GraphQL body."""
        endpoint = "tracking.orders"
        response = await self._http.request(
            "POST",
            "/graphql",
            endpoint=endpoint,
            json_body={"query": ORDERS_QUERY, "variables": {"emails": list(emails)}},
            idempotent=True,  # a read sent as POST: safe to repeat
        )
        body = response.body
        # GraphQL reports failures with HTTP 200; partial data is still data.
        if isinstance(body, dict) and body.get("errors") and body.get("data") is None:
            errors = body["errors"]
            first = errors[0] if isinstance(errors, list) else errors
            message = upstream_message(first, fallback="Loop Order Tracking query failed")
            raise LoopError(message, status=response.status, body=body, endpoint=endpoint)
        return body

    async def search_shipments(self, term: str) -> Any:
        """The order matching an order name or tracking code; None when there is none."""
        response = await self._http.request(
            "GET",
            f"/2022-10/shipments/search/{quote(term, safe='')}",
            endpoint="tracking.shipments.search",
        )
        return response.body
