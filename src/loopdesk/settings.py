"""Settings: environment variables prefixed LOOPDESK_, or a `loopdesk.toml`.

Secrets are `SecretStr`, so they never show in a repr, a log line or an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

LOOP_BASE_URL = "https://api.loopreturns.com"
ORDER_TRACKING_BASE_URL = "https://api.wonderment.com"
WEBHOOK_SECRET_SETTING = "LOOPDESK_LOOP_WEBHOOK_SECRET"  # noqa: S105 - a name, not a value
# Public on purpose: the sandbox's documented default, never accepted with a real token.
SANDBOX_WEBHOOK_SECRET = "sandbox-secret"  # noqa: S105


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LOOPDESK_",
        toml_file="loopdesk.toml",
        extra="ignore",
        frozen=True,
    )

    # Upstream APIs. No token: the built-in sandbox serves both APIs.
    loop_api_token: SecretStr | None = None
    loop_base_url: str = LOOP_BASE_URL
    order_tracking_token: SecretStr | None = None
    order_tracking_base_url: str = ORDER_TRACKING_BASE_URL
    # Webhook secrets (Loop sets one per subscription): comma-separated in the
    # environment, a list in the TOML. An event verifies if any of them signed it, so a
    # rotation can keep the old and the new one for a while. None configured: only the
    # sandbox default applies, and only in sandbox mode (see `webhook_secrets`).
    loop_webhook_secret: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    # When a stored webhook event is applied: `background` (answered once committed,
    # applied right after by a worker, in batches) or `inline` (applied before the
    # answer, one transaction per event: slower, for callers that read the answer's
    # outcome). Events left `received` are swept every `webhook_sweep_interval_s`.
    # When `webhook_max_pending` events wait to be applied, new deliveries wait (their
    # answer is delayed, never refused) until the applier catches up.
    webhook_apply: str = Field(default="background", pattern="^(background|inline)$")
    webhook_sweep_interval_s: float = Field(default=60.0, ge=0)
    webhook_max_pending: int = Field(default=5000, ge=1)

    log_level: str = Field(default="INFO", pattern="(?i)^(debug|info|warning|error|critical)$")

    # An extra bearer key for /v1 routes (named `env`), besides `loopdesk keys create` ones.
    api_key: SecretStr | None = None
    # How long a verified key is remembered in memory (revocation delay).
    api_key_cache_s: float = Field(default=10.0, ge=0)
    # Encrypts the console's session cookie, which holds the signed-in key (`web.session`).
    # None: a random secret per process, so a restart signs the console out (`serve
    # --workers N` shares one among its workers).
    console_secret: SecretStr | None = None

    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    lookup_ttl_s: float = Field(default=60.0, ge=0)
    # Store-served views kept in this process's memory (other workers' writes show
    # after at most this long; 0 = always read the store).
    lookup_memory_s: float = Field(default=2.0, ge=0)

    database_url: str = "sqlite+aiosqlite:///./loopdesk.db"
    redis_url: str | None = None
    policy_file: Path | None = None
    rules_file: Path | None = None
    # Gladly Lookup Adaptor (`POST /gladly/lookup`, README "Gladly: the Lookup Adaptor").
    # The signing key Gladly signs `Gladly-Authorization` with (unset: not checked, and
    # the service says so at start-up); optional Basic auth (both or neither); a replay
    # window on `Gladly-Time` in seconds (0: off); the path Gladly signs when a proxy
    # serves the route under another one; how long a lookup waits for Loop before it
    # answers from the store (Gladly wants an answer within 5 s).
    gladly_signing_key: SecretStr | None = None
    gladly_lookup_basic_user: str | None = Field(default=None, max_length=200)
    gladly_lookup_basic_password: SecretStr | None = None
    gladly_lookup_replay_window_s: float = Field(default=0.0, ge=0)
    gladly_lookup_public_path: str | None = Field(default=None, pattern=r"^/[^\s?#]*$")
    gladly_lookup_budget_s: float = Field(default=4.0, gt=0, le=14)
    # A merchant's wording for the guide: templates that replace the built-in ones, file by
    # file (`guides.render`; checked at start-up).
    guide_templates_dir: Path | None = None

    # Sandbox.
    sandbox_data: Path | None = None
    sandbox_latency_ms: int = Field(default=0, ge=0)
    sandbox_token: SecretStr | None = None
    sandbox_error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    sandbox_rate_limit_per_minute: int = Field(default=300, ge=0)  # 0 = unlimited
    sandbox_notes_shape: str = Field(default="array", pattern="^(array|object)$")
    sandbox_seed: int = 1086
    # `serve` with the in-process sandbox: its webhooks go to the service itself.
    sandbox_webhooks_to_self: bool = True
    sandbox_customers: int = Field(default=240, ge=1)
    # Draft returns (Return Create API): how long a draft lives before it is `expired`,
    # and the shape GET .../totals answers in (`peer`: Gladly's app's `{"data": ...}`;
    # `documented`: the draft response, whose `draft_return.totals` Loop documents).
    sandbox_draft_ttl_seconds: int = Field(default=86_400, ge=1)
    sandbox_totals_shape: str = Field(default="peer", pattern="^(peer|documented)$")

    # Upstream client behaviour.
    http_connect_timeout_s: float = Field(default=3.0, gt=0)
    http_read_timeout_s: float = Field(default=10.0, gt=0)
    http_retry_attempts: int = Field(default=4, ge=1)
    http_retry_timeout_s: float = Field(default=30.0, gt=0)
    http_max_retry_after_s: float = Field(default=30.0, ge=0)
    upstream_concurrency: int = Field(default=16, ge=1)
    # What carries upstream requests: `aiohttp` (its pool and C parser: about half the
    # CPU per request of httpx's own pool) or `httpx` (httpx's own pool, httpcore).
    upstream_transport: str = Field(default="aiohttp", pattern="^(aiohttp|httpx)$")

    # Loop's rate limit: requests per sliding minute per API key, for every process
    # together (shared on Redis when `redis_url` is set).
    loop_rate_limit_per_minute: int = Field(default=300, ge=1)
    # Processes sharing one key without Redis (or while it is down): each sends at most
    # its share of the budget. `serve --workers N` raises it to N.
    loop_rate_limit_processes: int = Field(default=1, ge=1)
    # After a 429 without Retry-After the key pauses this long, doubling per 429 in a row
    # up to the maximum; a request keeps waiting through pauses for at most max_wait.
    loop_rate_limit_backoff_s: float = Field(default=1.0, gt=0)
    loop_rate_limit_max_backoff_s: float = Field(default=15.0, gt=0)
    loop_rate_limit_max_wait_s: float = Field(default=60.0, ge=0)
    # The sandbox's own 429s carry no Retry-After (Loop documents none) unless asked.
    sandbox_rate_limit_retry_after: bool = False

    # Customer lookup (the peer's values are the defaults).
    lookup_max_emails: int = Field(default=5, ge=1)
    lookup_returns_per_email: int = Field(default=10, ge=1)
    lookup_returns_days: int = Field(default=365, ge=1)
    lookup_max_orders: int = Field(default=10, ge=0)

    # Routing events (`routing.changed`, README "Routing events"): where they go
    # (comma-separated in the environment, a list in the TOML; none: not emitted), the
    # secret that signs them (required with URLs outside sandbox mode), how often the
    # store is scanned for facts that change by time alone (0: never), and delivery.
    routing_webhook_urls: Annotated[tuple[str, ...], NoDecode] = ()
    routing_webhook_secret: SecretStr | None = None
    routing_scan_interval_s: float = Field(default=300.0, ge=0)
    routing_webhook_timeout_s: float = Field(default=10.0, gt=0)
    routing_webhook_retry_base_s: float = Field(default=2.0, gt=0)
    routing_webhook_retry_max_s: float = Field(default=3600.0, gt=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @field_validator("loop_webhook_secret", mode="before")
    @classmethod
    def _secret_list(cls, value: Any) -> Any:
        """`"a, b"`, `["a", "b"]` or one SecretStr: the non-empty secrets, in order."""
        if value is None:
            return ()
        if isinstance(value, str | SecretStr):
            value = [value]
        if isinstance(value, Sequence):
            items: list[str] = []
            for item in value:
                text = item.get_secret_value() if isinstance(item, SecretStr) else str(item)
                items += [part.strip() for part in text.split(",")]
            return tuple(SecretStr(item) for item in items if item)
        return value

    @field_validator("routing_webhook_urls", mode="before")
    @classmethod
    def _url_list(cls, value: Any) -> Any:
        """`"https://a, https://b"` or a list: each an http(s) URL with a host."""
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, Sequence):
            return value
        urls: list[str] = []
        for item in value:
            for part in str(item).split(","):
                url = part.strip()
                if not url:
                    continue
                parsed = urlsplit(url)
                if parsed.scheme not in ("http", "https") or not parsed.hostname:
                    raise ValueError(f"not an http(s) URL: {url[:200]!r}")
                urls.append(url)
        return tuple(dict.fromkeys(urls))

    @model_validator(mode="after")
    def _gladly_basic_pair(self) -> Settings:
        """Basic auth on the Gladly lookup needs both the user and the password."""
        user = bool(self.gladly_lookup_basic_user)
        password = bool(
            self.gladly_lookup_basic_password
            and self.gladly_lookup_basic_password.get_secret_value()
        )
        if user != password:
            raise ValueError(
                "LOOPDESK_GLADLY_LOOKUP_BASIC_USER and LOOPDESK_GLADLY_LOOKUP_BASIC_PASSWORD "
                "go together: set both or neither"
            )
        return self

    @cached_property
    def webhook_secrets(self) -> tuple[str, ...]:
        """The secrets a Loop webhook may be signed with; empty: refuse every webhook."""
        configured = tuple(s.get_secret_value() for s in self.loop_webhook_secret)
        if configured:
            return configured
        return (SANDBOX_WEBHOOK_SECRET,) if self.uses_sandbox else ()

    @cached_property
    def sandbox_webhook_secret(self) -> str:
        """What the sandbox signs its webhooks with: the first secret, or its default."""
        return self.webhook_secrets[0] if self.webhook_secrets else SANDBOX_WEBHOOK_SECRET

    @cached_property
    def uses_sandbox(self) -> bool:
        """True when no Loop token is configured: both APIs come from the sandbox."""
        return self.loop_api_token is None or not self.loop_api_token.get_secret_value()

    # Gladly REST API and webhooks (README "Gladly: re-routing open conversations").
    # The org's base URL (`https://ORG.gladly.com`), the API user's email and API token:
    # all three, or none (then only sandbox mode re-routes, in the Gladly simulator).
    # `POST /webhooks/gladly` takes Basic credentials (user and password) and/or the
    # secret in the `X-Loopdesk-Gladly-Secret` header: each one configured must match.
    # Each routing queue's Gladly inbox id: `queue=inboxId` pairs, comma-separated in the
    # environment, a table in the TOML; a queue not listed moves nothing.
    gladly_base_url: str | None = None
    gladly_api_user: str | None = None
    gladly_api_token: SecretStr | None = None
    gladly_webhook_user: str | None = None
    gladly_webhook_password: SecretStr | None = None
    gladly_webhook_secret: SecretStr | None = None
    gladly_queue_inboxes: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    gladly_rate_limit_per_s: int = Field(default=10, ge=1)

    @field_validator("gladly_base_url", mode="before")
    @classmethod
    def _gladly_url(cls, value: Any) -> Any:
        """An http(s) URL with a host; `/api/v1` and trailing slashes dropped (the
        client adds the API's path). Empty: none."""
        if value is None or not str(value).strip():
            return None
        url = str(value).strip().rstrip("/").removesuffix("/api/v1")
        parsed = urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"not an http(s) URL: {url[:200]!r}")
        return url

    @field_validator("gladly_queue_inboxes", mode="before")
    @classmethod
    def _queue_inboxes(cls, value: Any) -> Any:
        """`"returns-priority=abc, returns=def"` or a table: queue -> inbox id, both
        non-empty, a queue listed once."""
        if value is None:
            return {}
        if isinstance(value, str):
            pairs: list[tuple[str, str]] = []
            for part in value.split(","):
                if not part.strip():
                    continue
                queue, sep, inbox = part.partition("=")
                if not sep:
                    raise ValueError(f"not a queue=inboxId pair: {part.strip()[:200]!r}")
                pairs.append((queue, inbox))
        elif isinstance(value, dict):
            pairs = [(str(k), str(v)) for k, v in value.items()]
        else:
            return value
        mapping: dict[str, str] = {}
        for queue, inbox in pairs:
            queue, inbox = queue.strip(), inbox.strip()
            if not queue or not inbox:
                raise ValueError(f"a queue and an inbox id are both needed: {queue!r}={inbox!r}")
            if queue in mapping:
                raise ValueError(f"queue {queue!r} is listed twice")
            mapping[queue] = inbox
        return mapping
