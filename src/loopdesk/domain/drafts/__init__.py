"""Loop's Draft Returns API (the Return Create API) as plain values, and the peer's outputs.

Pure: no I/O. `loopdesk.loop.drafts` sends the requests and hands the bodies here.
Wire facts: reference/loop-draft-returns.md.

- `parse_draft`, `parse_totals`, `parse_return_details`: 2xx bodies to frozen models.
  Ids are decimal strings read through a 64-bit integer (never a float); amounts are
  integers in minor units. A body of another shape raises one `InvalidUpstreamData`
  naming the field, never a `KeyError` or a silently wrong amount.
- `next_steps`, `allows`, `link_for`, `require_step`: the draft's `links` (or HAL-Forms
  `_links`/`_templates`) decide which call is legal next; `CALL_RELS` names the rel of
  each client call. Nothing assumes an order of steps.
- `draft_errors`, `draft_failure_text`: the peer's reading of a failed call.
- `*_output`, `error_output`: each action's result, and a failure, exactly as Gladly's
  Loop Returns app (1.6.2) renders them.
"""

from loopdesk.domain.drafts.details import has_return, no_return_found_message, parse_return_details
from loopdesk.domain.drafts.failures import (
    DEFAULT_FAILURE,
    DEFAULT_REJECTION,
    LOOKUP_NEEDS_AN_ID,
    NO_RETURN_FOUND,
    NO_RETURNING_ITEM,
    UNAUTHORIZED_MESSAGE,
    action_failure,
    draft_errors,
    draft_failure_text,
)
from loopdesk.domain.drafts.links import (
    CALL_RELS,
    allows,
    link_for,
    next_steps,
    parse_links,
    require_step,
)
from loopdesk.domain.drafts.models import (
    CartItem,
    Draft,
    DraftTotals,
    EligibleItem,
    ExchangeOptions,
    ExchangeVariant,
    IneligibleItem,
    Link,
    Money,
    OrderLineItem,
    OrderSummary,
    ProductOption,
    Reason,
    ReturnDetails,
    ReturnDetailsLineItem,
    ReturningItem,
    ReturnMethodOption,
    VariantOption,
)
from loopdesk.domain.drafts.outputs import (
    add_exchange_item_output,
    add_return_item_output,
    cancel_draft_return_output,
    check_eligibility_output,
    error_output,
    finalize_items_output,
    get_draft_return_output,
    get_draft_totals_output,
    get_return_details_output,
    links_output,
    money_output,
    returning_item_for,
    select_return_method_output,
    set_credit_type_output,
    set_return_reason_output,
    set_return_type_output,
    step_output,
    submit_return_output,
)
from loopdesk.domain.drafts.parse import parse_draft, parse_totals, read_money
from loopdesk.domain.drafts.values import (
    CREDIT_TYPES,
    CURRENCY_TYPES,
    INT64_MAX,
    RETURN_TYPES,
    input_id,
    read_amount,
    read_id,
)

__all__ = [
    "CALL_RELS",
    "CREDIT_TYPES",
    "CURRENCY_TYPES",
    "DEFAULT_FAILURE",
    "DEFAULT_REJECTION",
    "INT64_MAX",
    "LOOKUP_NEEDS_AN_ID",
    "NO_RETURNING_ITEM",
    "NO_RETURN_FOUND",
    "RETURN_TYPES",
    "UNAUTHORIZED_MESSAGE",
    "CartItem",
    "Draft",
    "DraftTotals",
    "EligibleItem",
    "ExchangeOptions",
    "ExchangeVariant",
    "IneligibleItem",
    "Link",
    "Money",
    "OrderLineItem",
    "OrderSummary",
    "ProductOption",
    "Reason",
    "ReturnDetails",
    "ReturnDetailsLineItem",
    "ReturnMethodOption",
    "ReturningItem",
    "VariantOption",
    "action_failure",
    "add_exchange_item_output",
    "add_return_item_output",
    "allows",
    "cancel_draft_return_output",
    "check_eligibility_output",
    "draft_errors",
    "draft_failure_text",
    "error_output",
    "finalize_items_output",
    "get_draft_return_output",
    "get_draft_totals_output",
    "get_return_details_output",
    "has_return",
    "input_id",
    "link_for",
    "links_output",
    "money_output",
    "next_steps",
    "no_return_found_message",
    "parse_draft",
    "parse_links",
    "parse_return_details",
    "parse_totals",
    "read_amount",
    "read_id",
    "read_money",
    "require_step",
    "returning_item_for",
    "select_return_method_output",
    "set_credit_type_output",
    "set_return_reason_output",
    "set_return_type_output",
    "step_output",
    "submit_return_output",
]
