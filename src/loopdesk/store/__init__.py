"""Every query loopdesk makes: SQLAlchemy 2 async on SQLite (default) or PostgreSQL.

`Store` owns the engine and runs the Alembic migrations shipped in `migrations/`;
the query functions take the `AsyncSession` of `store.session()`, so a caller can
group several of them in one transaction.
"""

from loopdesk.store.api_keys import (
    ApiKeyRow,
    create_api_key,
    list_api_keys,
    revoke_api_key,
    verify_api_key,
)
from loopdesk.store.audit import AuditRow, get_audit, list_audit, record_audit
from loopdesk.store.checkpoints import get_checkpoint, save_checkpoint
from loopdesk.store.conversations import ConversationRow, get_conversation, save_conversation
from loopdesk.store.engine import Store, upgrade
from loopdesk.store.exceptions import (
    LEDGER_OUTCOMES,
    ExceptionRow,
    count_granted,
    customer_grants,
    fail_grant,
    get_exception,
    grant_for_order,
    list_exceptions,
    lock_exception_customer,
    note_unsettled,
    record_exception,
    settle_grant,
)
from loopdesk.store.freshness import fetched_at, mark_fetched, stored_orders
from loopdesk.store.idempotency import (
    Claim,
    IdempotencyRow,
    claim_idempotency_key,
    finish_idempotency_key,
    get_idempotency_key,
    release_idempotency_key,
)
from loopdesk.store.returns import (
    StoredReturn,
    get_return,
    lock_return,
    normalize_email,
    read_lock,
    replace_notes,
    returns_for_emails,
    stored_return,
    upsert_returns,
    write_return,
)
from loopdesk.store.routing import (
    DecisionRow,
    decision_counts,
    list_decisions,
    record_decision,
)
from loopdesk.store.types import MAX_ROW_ID
from loopdesk.store.webhooks import (
    EVENT_STATUSES,
    REPLAYABLE,
    EventRow,
    EventStatus,
    claim_event,
    event_counts,
    event_status,
    events_in,
    failed_events,
    mark_event,
    note_event_error,
    record_event,
)

__all__ = [
    "EVENT_STATUSES",
    "LEDGER_OUTCOMES",
    "MAX_ROW_ID",
    "REPLAYABLE",
    "ApiKeyRow",
    "AuditRow",
    "Claim",
    "ConversationRow",
    "DecisionRow",
    "EventRow",
    "EventStatus",
    "ExceptionRow",
    "IdempotencyRow",
    "Store",
    "StoredReturn",
    "claim_event",
    "claim_idempotency_key",
    "count_granted",
    "create_api_key",
    "customer_grants",
    "decision_counts",
    "event_counts",
    "event_status",
    "events_in",
    "fail_grant",
    "failed_events",
    "fetched_at",
    "finish_idempotency_key",
    "get_audit",
    "get_checkpoint",
    "get_conversation",
    "get_exception",
    "get_idempotency_key",
    "get_return",
    "grant_for_order",
    "list_api_keys",
    "list_audit",
    "list_decisions",
    "list_exceptions",
    "lock_exception_customer",
    "lock_return",
    "mark_event",
    "mark_fetched",
    "normalize_email",
    "note_event_error",
    "note_unsettled",
    "read_lock",
    "record_audit",
    "record_decision",
    "record_event",
    "record_exception",
    "release_idempotency_key",
    "replace_notes",
    "returns_for_emails",
    "revoke_api_key",
    "save_checkpoint",
    "save_conversation",
    "settle_grant",
    "stored_orders",
    "stored_return",
    "upgrade",
    "upsert_returns",
    "verify_api_key",
    "write_return",
]
