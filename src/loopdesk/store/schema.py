"""The tables, as SQLAlchemy Core metadata (the queries use these; the migrations
create them and are checked against them in the tests)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from loopdesk.store.types import UTCDateTime

# Stable constraint names, so later migrations can refer to them on both dialects.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

returns = Table(
    "returns",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("customer_email", String(320), nullable=False, index=True),
    Column("updated_at", UTCDateTime(), nullable=False, index=True),
    Column("raw", JSON(), nullable=False),
    # The LoopReturn JSON without notes (notes live in their own table).
    Column("normalized", JSON(), nullable=False),
    Column("stored_at", UTCDateTime(), nullable=False),
    # What `updated_at` is (domain.webhooks.Source): NULL when it is Loop's own
    # `updated_at`, else the lower bound a webhook without one gave; and the trigger's
    # rank, which orders events of equal time.
    Column("version_source", String(16), nullable=True),
    Column("version_rank", Integer(), nullable=True),
)

notes = Table(
    "notes",
    metadata,
    Column("return_id", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    # Loop's order of the notes, which created_at (often null) cannot restore.
    Column("position", Integer(), nullable=False),
    Column("content", Text(), nullable=False),
    Column("created_at", String(64), nullable=True),
    Column("raw", JSON(), nullable=True),
)

customer_fetches = Table(
    "customer_fetches",
    metadata,
    Column("email", String(320), primary_key=True),
    Column("fetched_at", UTCDateTime(), nullable=False),
    # The normalized orders of the address set whose primary address this is.
    Column("orders", JSON(), nullable=True),
)

webhook_events = Table(
    "webhook_events",
    metadata,
    Column("id", Integer(), primary_key=True, autoincrement=True),
    Column("dedupe_key", String(128), nullable=False, unique=True),
    Column("topic", String(64), nullable=False),
    Column("trigger", String(64), nullable=False),
    Column("return_id", String(64), nullable=True, index=True),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("body", LargeBinary(), nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("error", Text(), nullable=True),
    Column("applied_at", UTCDateTime(), nullable=True),
    # Times an apply was started (a crash or an outage leaves it `received`).
    Column("attempts", Integer(), nullable=False, server_default="0"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer(), primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False, index=True),
    Column("key_name", String(128), nullable=False),
    Column("action", String(64), nullable=False, index=True),
    Column("inputs", JSON(), nullable=False),
    Column("result", JSON(), nullable=True),
    Column("ok", Boolean(), nullable=False),
    # The request's Idempotency-Key, for the trail only: one key may see several calls
    # (a refusal, then the retry that succeeded); `idempotency_keys` deduplicates.
    Column("idempotency_key", String(255), nullable=True),
)

# Idempotency keys, claimed before Loop is called: the unique constraint lets one
# request per (API key, Idempotency-Key) run. `in_progress` until the answer is
# known (a row left so says the process stopped mid-action), then `done` with the
# answer replayed to later requests; a failure Loop did not apply deletes the row.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("id", Integer(), primary_key=True, autoincrement=True),
    Column("key_name", String(128), nullable=False),
    Column("idempotency_key", String(255), nullable=False),
    Column("action", String(64), nullable=False),
    # SHA-256 of the action and its canonical JSON inputs: reuse for another request
    # is refused instead of answered with the first one's result.
    Column("fingerprint", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False, index=True),
    Column("finished_at", UTCDateTime(), nullable=True),
    # {"status": int, "body": {...}}: the answer replayed, the same as the audit row's.
    Column("response", JSON(), nullable=True),
    Column("audit_id", Integer(), nullable=True),
    UniqueConstraint("key_name", "idempotency_key", name="uq_idempotency_keys_key"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer(), primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("hash", String(64), nullable=False),
    Column("prefix", String(8), nullable=False, index=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime(), nullable=True),
)

# Progress of resumable jobs (a backfill), one JSON value per job name.
checkpoints = Table(
    "checkpoints",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("value", JSON(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# Routing decisions as they were made: who, on which facts, which rule, what outcome.
routing_decisions = Table(
    "routing_decisions",
    metadata,
    Column("id", Integer(), primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False, index=True),
    # The profile's addresses, normalized (stripped, lower-cased), in the order given.
    Column("customer_emails", JSON(), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("intent", String(32), nullable=False),
    Column("facts", JSON(), nullable=False),
    Column("queue", String(64), nullable=False, index=True),
    Column("priority", Integer(), nullable=False),
    Column("tags", JSON(), nullable=False),
    Column("rule", String(128), nullable=False, index=True),
)

# --- routing events (`routing.changed`) ------------------------------------------------

# The last routing outcome each customer was told of (or first seen with): the baseline
# a change is measured against, so one change is announced once. A customer is the set
# of normalized addresses the outcome was computed on; `customer` is its key.
routing_outcomes = Table(
    "routing_outcomes",
    metadata,
    Column("customer", String(64), primary_key=True),
    Column("emails", JSON(), nullable=False),
    Column("queue", String(64), nullable=False),
    Column("priority", Integer(), nullable=False),
    Column("rule", String(128), nullable=False),
    Column("tags", JSON(), nullable=False),
    Column("facts", JSON(), nullable=False),
    Column("decided_at", UTCDateTime(), nullable=False),
)

# Which customers an address belongs to: a webhook names one address.
routing_outcome_emails = Table(
    "routing_outcome_emails",
    metadata,
    Column("email", String(320), primary_key=True),
    Column("customer", String(64), primary_key=True, index=True),
)

# Outbound events, one row per event and URL, written in the transaction that decided
# the change (so nothing is sent that was not stored, and nothing stored is lost) and
# delivered until the receiver answers 2xx. `next_attempt_at` is also the claim: a
# sender pushes it past its own attempt before sending, so one process sends a row.
routing_outbox = Table(
    "routing_outbox",
    metadata,
    Column("id", Integer(), primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False),
    Column("url", String(2048), nullable=False),
    Column("body", LargeBinary(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("attempts", Integer(), nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime(), nullable=False, index=True),
    Column("delivered_at", UTCDateTime(), nullable=True),
    Column("last_error", Text(), nullable=True),
    UniqueConstraint("event_id", "url", name="uq_routing_outbox_event"),
)

# --- guides ---------------------------------------------------------------------------

# One row per help-desk conversation the guide takes part in: its state (slots, attempts,
# what was told) as JSON, so any worker can take the next message. `version` grows by one
# per turn; a turn writes only over the version it read (two messages of one
# conversation at once: the later one is told to retry, never silently merged).
conversations = Table(
    "conversations",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("channel", String(16), nullable=False),
    Column("emails", JSON(), nullable=False),
    Column("state", JSON(), nullable=False),
    Column("version", Integer(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False, index=True),
)

# --- return-window exceptions ---------------------------------------------------------

# The exceptions ledger: one row per decision (granted, refused, unknown ...), with the
# criteria as evaluated, so every decision can be explained afterwards. `grant_key` (the
# order's key) is set while a grant is pending or made: unique, so one order is never
# granted twice, even when two requests race; NULL on every other row.
exceptions = Table(
    "exceptions",
    metadata,
    Column("id", Integer(), primary_key=True, autoincrement=True),
    Column("decided_at", UTCDateTime(), nullable=False, index=True),
    # The customer's addresses, normalized (stripped, lower-cased), in the order given.
    Column("customer_emails", JSON(), nullable=False),
    Column("order_name", String(255), nullable=False),
    Column("order_key", String(255), nullable=False, index=True),
    Column("outcome", String(32), nullable=False, index=True),
    Column("criteria", JSON(), nullable=False),
    # The merchant's words for the refusal, and the rest of the decision (dates, items).
    Column("reason", Text(), nullable=True),
    Column("details", JSON(), nullable=False),
    Column("vip", Boolean(), nullable=False),
    Column("delivered_at", UTCDateTime(), nullable=True),
    Column("allowlist_id", String(64), nullable=True),
    Column("conversation_id", String(128), nullable=True),
    Column("key_name", String(128), nullable=False),
    Column("grant_key", String(255), nullable=True, unique=True),
    Column("settled_at", UTCDateTime(), nullable=True),
)

# Which exceptions an address belongs to: "one per customer" is asked per address.
exception_emails = Table(
    "exception_emails",
    metadata,
    Column("email", String(320), primary_key=True),
    Column("exception_id", Integer(), primary_key=True, index=True),
)

# --- Gladly: re-routing open conversations ---------------------------------------------

# Gladly's webhook events, stored before they are answered: `received` until applied
# (`applied`, with what was done) or given up (`failed`, with why). `event_id` is
# Gladly's id, so a redelivery is recognised; `next_attempt_at` is also the claim, as in
# the outbox: whoever applies an event first pushes it past its own attempt.
gladly_events = Table(
    "gladly_events",
    metadata,
    Column("id", Integer(), primary_key=True, autoincrement=True),
    Column("event_id", String(128), nullable=False, unique=True),
    Column("type", String(64), nullable=False),
    Column("conversation_id", String(128), nullable=True),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("body", LargeBinary(), nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("attempts", Integer(), nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime(), nullable=False, index=True),
    Column("applied_at", UTCDateTime(), nullable=True),
    Column("result", String(32), nullable=True),
    Column("error", Text(), nullable=True),
)

# The Gladly conversations loopdesk has heard of: whose they are (the Gladly profile,
# its addresses and their routing customer key, as in `routing_outcomes`), where they
# were last seen, and the routing outcome (`decided_at`) they were last placed by, so a
# changed outcome finds the conversations to move. `lease_until` is held while one
# process moves the conversation.
gladly_conversations = Table(
    "gladly_conversations",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("gladly_customer_id", String(128), nullable=False),
    Column("emails", JSON(), nullable=False),
    Column("customer", String(64), nullable=False, index=True),
    Column("inbox_id", String(128), nullable=True),
    Column("status", String(16), nullable=False, index=True),
    Column("outcome_at", UTCDateTime(), nullable=True),
    Column("lease_until", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# --- draft returns --------------------------------------------------------------------

# The draft returns made through loopdesk (`loopdesk.drafts`): who started each (the API
# key's name, or `guide:<conversation>`), for which conversation, and Loop's last answer
# for it (`body`, the draft body as Loop sent it), whose `links` say what may follow.
drafts = Table(
    "drafts",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("order_name", String(255), nullable=False),
    Column("key_name", String(128), nullable=False),
    Column("conversation_id", String(128), nullable=True, index=True),
    Column("state", String(64), nullable=True),
    Column("body", JSON(), nullable=False),
    Column("return_id", String(64), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False, index=True),
)

__all__ = [
    "api_keys",
    "audit_log",
    "checkpoints",
    "conversations",
    "customer_fetches",
    "drafts",
    "exception_emails",
    "exceptions",
    "gladly_conversations",
    "gladly_events",
    "idempotency_keys",
    "metadata",
    "notes",
    "returns",
    "routing_decisions",
    "routing_outbox",
    "routing_outcome_emails",
    "routing_outcomes",
    "webhook_events",
]
