"""The console's pages (README "The console"): sign-in with an API key, a customer's
returns and orders, the facts and routing decision, actions behind a confirmation step,
their audit trail, and a chat with the guide as that customer.

Every datum and every action goes through the JSON API (`web.api`), as the signed-in
key. Pages are whole documents; htmx asks for the fragment alone (`HX-Request`) and
swaps it in, so each form also works without script.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from loopdesk.actions.run import ALLOWLIST_TYPES, RETURN_ACTIONS
from loopdesk.api.auth import key_name
from loopdesk.domain.money import minor_money, money
from loopdesk.routing.rules import CHANNELS, INTENTS
from loopdesk.web.api import (
    ACTION_KINDS,
    ActionKind,
    ActionSpec,
    Answer,
    ConsoleApi,
    idempotency_key,
)
from loopdesk.web.demo import showcases
from loopdesk.web.draft_steps import STEPS
from loopdesk.web.draft_view import (
    CREDIT_TYPE_WORDS,
    RETURN_TYPE_WORDS,
    Summary,
    order_key,
    summaries,
    variant_label,
)
from loopdesk.web.format import ago, when
from loopdesk.web.session import (
    CSRF_FIELD,
    CSRF_HEADER,
    Session,
    SessionCodec,
    cross_site,
    csrf_ok,
)

HERE = Path(__file__).parent
STATIC_PATH = "/console/static"
MAX_FORM_FIELD = 2_000
MAX_KEY_LENGTH = 512
RECENT_DRAFTS = 20  # on the search page, across customers
# Pages hold customer data: not cached, not framed, scripts and styles from here only.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "object-src 'none'"
    ),
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",  # "no-referrer" would make the Origin of our own posts "null"
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters.update(money=money, minor=minor_money, when=when, ago=ago)
templates.env.globals.update(
    static=STATIC_PATH,
    channels=CHANNELS,
    intents=("", *INTENTS),  # "": not known
    allowlist_types=ALLOWLIST_TYPES,
    return_actions=RETURN_ACTIONS,
    # The draft pages (`web.draft_pages`); a form's Idempotency-Key is drawn as it renders.
    steps=STEPS,
    return_type_words=RETURN_TYPE_WORDS,
    credit_type_words=CREDIT_TYPE_WORDS,
    variant_label=variant_label,
    new_key=idempotency_key,
)


def install(app: FastAPI, secret: str | None) -> None:
    """Mount the console at `/` (its other paths under `/console/`) on the service."""
    app.state.console_codec = SessionCodec(secret)
    app.include_router(router)
    app.mount(STATIC_PATH, StaticFiles(directory=HERE / "static"), name="console-static")


# --- the request's session, forms and answers ---------------------------------------


@dataclass
class Visit:
    """The request's session, and whether the response must (re)write its cookie."""

    request: Request
    session: Session
    write: bool = False

    @property
    def codec(self) -> SessionCodec:
        codec: SessionCodec = self.request.app.state.console_codec
        return codec

    @property
    def htmx(self) -> bool:
        return self.request.headers.get("hx-request") == "true"

    def api(self) -> ConsoleApi:
        assert self.session.key is not None  # callers check `signed_in` first
        return ConsoleApi(self.request.app, self.session.key)

    def page(self, template: str, status: int = 200, **context: Any) -> Response:
        """The template as a whole page, or alone for htmx (it extends `layout`)."""
        context.update(
            session=self.session,
            csrf=self.session.csrf,
            layout="fragment.html" if self.htmx else "layout.html",
            upstream="Loop" if self.request.app.state.upstream.sandbox is None else "the sandbox",
        )
        response = templates.TemplateResponse(self.request, template, context, status_code=status)
        return self.finish(response)

    def finish(self, response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        if self.write:
            self.codec.write(response, self.request, self.session)
        return response

    def to_sign_in(self, reason: str = "") -> Response:
        """Signed out (or the key stopped working): back to the sign-in page."""
        if reason:
            self.session = Session.new()
            self.write = True
        target = "/?signed_out=" + reason if reason else "/"
        if self.htmx:  # htmx follows this header with a full page load
            response: Response = Response(status_code=401, headers={"HX-Redirect": target})
        else:
            response = RedirectResponse(target, status_code=303)
        return self.finish(response)


def visit(request: Request) -> Visit:
    codec: SessionCodec = request.app.state.console_codec
    session = codec.read(request)
    if session is None:
        return Visit(request, Session.new(), write=True)
    return Visit(request, session)


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form (what browsers and htmx send), each field once, bounded."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    fields: dict[str, str] = {}
    for name, value in parse_qsl((await request.body()).decode("utf-8", "replace")):
        fields.setdefault(name, value[:MAX_FORM_FIELD])
    return fields


def trusted_post(current: Visit, form: dict[str, str]) -> bool:
    """Same-site, and carrying this session's CSRF token (field or header)."""
    token = form.get(CSRF_FIELD) or current.request.headers.get(CSRF_HEADER)
    return not cross_site(current.request) and csrf_ok(current.session, token)


def refused(current: Visit) -> Response:
    return current.page("refused.html", status=403)


async def signed_in_post(request: Request) -> tuple[Visit, dict[str, str], Response | None]:
    """The visit and its form, and the answer that stops here when the visitor is not
    signed in (sign in first) or the post is not trusted (refused)."""
    current = visit(request)
    form = await read_form(request)
    if not current.session.signed_in:
        return current, form, current.to_sign_in()
    if not trusted_post(current, form):
        return current, form, refused(current)
    return current, form, None


def parse_emails(text: str) -> list[str]:
    """`a@x.co, b@y.co` or one a line: the addresses in order, each once."""
    seen: dict[str, str] = {}
    for part in re.split(r"[\s,;]+", text.strip()):
        if part and part.casefold() not in seen:
            seen[part.casefold()] = part
    return list(seen.values())


def customer_url(emails: list[str], **extra: str) -> str:
    return "/?" + urlencode({"emails": " ".join(emails), **extra})


# --- what a customer's page shows ---------------------------------------------------


@dataclass
class CustomerPage:
    emails: list[str]
    lookup: Answer
    decision: Answer | None = None
    audit: Answer | None = None
    drafts: Answer | None = None
    conversation: str = field(default_factory=lambda: "console-" + secrets.token_hex(8))

    @property
    def view(self) -> dict[str, Any]:
        return self.lookup.body if self.lookup.ok else {}

    @property
    def query(self) -> str:
        return " ".join(self.emails)

    @property
    def audit_items(self) -> list[dict[str, Any]]:
        if self.audit is None or not self.audit.ok:
            return []
        return customer_audit(self.audit.body.get("items", []), self.view, self.emails)

    @property
    def order_names(self) -> set[str]:
        view = self.view
        names = {str(o.get("name", "")) for o in view.get("orders", [])}
        return names | {str(r.get("order", {}).get("name", "")) for r in view.get("returns", [])}

    @property
    def draft_rows(self) -> list[Summary]:
        """The recent draft returns of this customer's orders."""
        return summaries(self.drafts, self.order_names)

    @property
    def drafts_enabled(self) -> bool:
        """False when the shop sends return links only (the list says `enabled: false`)."""
        return self.drafts is None or self.drafts.body.get("enabled") is not False


def customer_audit(
    items: list[dict[str, Any]], view: dict[str, Any], emails: list[str]
) -> list[dict[str, Any]]:
    """The audit rows about this customer: their returns, orders or addresses."""
    returns = view.get("returns", [])
    return_ids = {str(r.get("id")) for r in returns}
    orders = {order_key(o.get("name")) for o in view.get("orders", [])}
    orders |= {order_key(r.get("order", {}).get("name")) for r in returns}
    addresses = {e.casefold() for e in emails}
    kept = []
    for item in items:
        inputs = item.get("inputs") or {}
        if (
            str(inputs.get("returnId", "")) in return_ids
            or order_key(inputs.get("orderName", "")) in orders - {""}
            or (inputs.get("type") == "order" and order_key(inputs.get("value")) in orders)
            or (
                inputs.get("type") == "email"
                and str(inputs.get("value", "")).casefold() in addresses
            )
        ):
            kept.append(item)
    return kept


async def load_customer(api: ConsoleApi, emails: list[str], *, fresh: bool) -> CustomerPage:
    page = CustomerPage(emails, await api.lookup(emails, fresh=fresh))
    if page.lookup.ok:
        # After the lookup, so the decision reads the facts it just stored.
        page.decision = await api.decide(emails)
        page.audit = await api.audit()
        page.drafts = await api.drafts(order_names=sorted(page.order_names))
    return page


def _answers(page: CustomerPage) -> list[Answer]:
    return [a for a in (page.lookup, page.decision, page.audit, page.drafts) if a is not None]


# --- pages --------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
async def home(
    request: Request, emails: str = "", fresh: str = "", signed_out: str = ""
) -> Response:
    current = visit(request)
    if not current.session.signed_in:
        return current.page("sign_in.html", signed_out=signed_out[:40])
    addresses = parse_emails(emails[:MAX_FORM_FIELD])
    customer = None
    recent = None
    async with current.api() as api:
        if addresses:
            customer = await load_customer(api, addresses, fresh=bool(fresh))
        else:
            recent = await api.drafts(limit=RECENT_DRAFTS)
    answers = _answers(customer) if customer is not None else [a for a in (recent,) if a]
    if any(a.unauthorized for a in answers):
        return current.to_sign_in("key")
    return current.page(
        "console.html",
        query=" ".join(addresses),
        customer=customer,
        showcases=showcases(request.app) if customer is None else [],
        drafts_answer=recent,
        draft_rows=summaries(recent),
    )


@router.post("/console/sign-in", response_class=HTMLResponse)
async def sign_in(request: Request) -> Response:
    current = visit(request)
    form = await read_form(request)
    if not trusted_post(current, form):
        return refused(current)
    presented = form.get("key", "").strip()
    name = None
    if presented and len(presented) <= MAX_KEY_LENGTH:
        name = await key_name(request.app, presented)
    if name is None:
        return current.page("sign_in.html", status=401, failed=True)
    current.session = current.session.signed_in_as(presented, name)
    current.write = True
    return current.finish(RedirectResponse("/", status_code=303))


@router.post("/console/sign-out")
async def sign_out(request: Request) -> Response:
    current = visit(request)
    if not trusted_post(current, await read_form(request)):
        return refused(current)
    response = RedirectResponse("/", status_code=303)
    current.codec.clear(response)
    return current.finish(response)


@router.get("/console/customer", response_class=HTMLResponse)
async def customer_fragment(request: Request, emails: str = "", fresh: str = "") -> Response:
    """The customer's cards (htmx: the refresh button); a browser gets the whole page."""
    current = visit(request)
    addresses = parse_emails(emails[:MAX_FORM_FIELD])
    if not current.htmx:
        return RedirectResponse(customer_url(addresses, **({"fresh": "1"} if fresh else {})), 303)
    if not current.session.signed_in:
        return current.to_sign_in()
    async with current.api() as api:
        customer = await load_customer(api, addresses, fresh=bool(fresh))
    if any(a.unauthorized for a in _answers(customer)):
        return current.to_sign_in("key")
    return current.page("_customer.html", customer=customer)


@router.post("/console/routing", response_class=HTMLResponse)
async def routing(request: Request) -> Response:
    current, form, stop = await signed_in_post(request)
    if stop is not None:
        return stop
    addresses = parse_emails(form.get("emails", ""))
    channel = form.get("channel", "")
    intent = form.get("intent", "")
    async with current.api() as api:
        decision = await api.decide(addresses, channel=channel, intent=intent)
    if decision.unauthorized:
        return current.to_sign_in("key")
    return current.page(
        "_routing.html",
        decision=decision,
        query=" ".join(addresses),
        channel=channel,
        intent=intent,
        status=200 if decision.ok else decision.status,
    )


@router.get("/console/audit", response_class=HTMLResponse)
async def audit_fragment(request: Request, emails: str = "") -> Response:
    current = visit(request)
    if not current.session.signed_in:
        return current.to_sign_in()
    addresses = parse_emails(emails[:MAX_FORM_FIELD])
    async with current.api() as api:
        page = CustomerPage(addresses, await api.lookup(addresses))
        page.audit = await api.audit()
    if any(a.unauthorized for a in _answers(page)):
        return current.to_sign_in("key")
    return current.page("_audit.html", customer=page)


def _spec(form: dict[str, str]) -> ActionSpec | None:
    kind = form.get("kind", "")
    if kind not in ACTION_KINDS:
        return None
    return ActionSpec(
        kind=cast(ActionKind, kind),
        return_id=form.get("return_id", "").strip(),
        order_name=form.get("order_name", "").strip(),
        zip=form.get("zip", "").strip(),
        type=form.get("type", "").strip(),
        value=form.get("value", "").strip(),
        content=form.get("content", "").strip(),
    )


@router.post("/console/actions/confirm", response_class=HTMLResponse)
async def confirm_action(request: Request) -> Response:
    """Step one: what is about to happen, and a button that does it."""
    current, form, stop = await signed_in_post(request)
    if stop is not None:
        return stop
    spec = _spec(form)
    if spec is None:
        return current.page("_unknown_action.html", status=422)
    return current.page(
        "_confirm.html",
        spec=spec,
        query=form.get("emails", ""),
        idempotency_key=idempotency_key(),
    )


@router.post("/console/actions/run", response_class=HTMLResponse)
async def run_action(request: Request) -> Response:
    """Step two: the action, through the API (audited there), and Loop's answer."""
    current, form, stop = await signed_in_post(request)
    if stop is not None:
        return stop
    spec = _spec(form)
    idempotency_key = form.get("idempotency_key", "")
    if spec is None or not idempotency_key:
        return current.page("_unknown_action.html", status=422)
    async with current.api() as api:
        answer = await api.act(spec, idempotency_key)
    if answer.unauthorized:
        return current.to_sign_in("key")
    response = current.page(
        "_action_result.html",
        spec=spec,
        answer=answer,
        query=form.get("emails", ""),
        status=200 if answer.ok else answer.status,
    )
    response.headers["HX-Trigger"] = "audit-changed"  # the audit card reloads itself
    return response


@router.get("/console/actions/back", response_class=HTMLResponse)
async def action_back(request: Request, emails: str = "") -> Response:
    """Leaving a confirmation: nothing (htmx empties the slot) or the customer's page."""
    current = visit(request)
    if not current.htmx:
        return RedirectResponse(customer_url(parse_emails(emails[:MAX_FORM_FIELD])), 303)
    return current.finish(HTMLResponse(""))


@router.post("/console/chat", response_class=HTMLResponse)
async def chat(request: Request) -> Response:
    """One customer message to the guide, and its answer, as this customer."""
    current, form, stop = await signed_in_post(request)
    if stop is not None:
        return stop
    addresses = parse_emails(form.get("emails", ""))
    conversation = form.get("conversation", "") or "console-" + secrets.token_hex(8)
    channel = form.get("channel", "chat")
    text = form.get("text", "")
    async with current.api() as api:
        answer = await api.guide(conversation, channel, text, addresses)
    if answer.unauthorized:
        return current.to_sign_in("key")
    return current.page(
        "_chat_turn.html",
        answer=answer,
        text=text,
        channel=channel,
        conversation=conversation,
        query=" ".join(addresses),
        status=200 if answer.ok else answer.status,
    )


@router.get("/console/chat/new", response_class=HTMLResponse)
async def chat_new(request: Request, emails: str = "", channel: str = "chat") -> Response:
    """A new conversation: the chat card, empty, under a new id."""
    current = visit(request)
    if not current.session.signed_in:
        return current.to_sign_in()
    addresses = parse_emails(emails[:MAX_FORM_FIELD])
    if not current.htmx:
        return RedirectResponse(customer_url(addresses), 303)
    page = CustomerPage(addresses, Answer(200, {}))
    return current.page(
        "_chat.html", customer=page, channel=channel if channel in CHANNELS else "chat"
    )
