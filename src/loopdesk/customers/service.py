"""The customer lookup a service answers: from the store when fresh, from Loop otherwise.

- Fresh enough (fetched within `lookup_ttl_s`): served from the store, no upstream call.
- Otherwise fetched from Loop (one fetch per customer at a time, shared by concurrent
  callers) and written to the store: a whole fetch right after it is answered (a failed
  write is logged and counted), a partial one before, as the store fills its gaps.
- When Loop fails, the stored data is served with `meta.stale = true`, `meta.asOf` and
  `meta.errors`: never a 5xx for an upstream outage. A customer never fetched gets an
  explicit `nothing_fetched` error, so "no returns" is never mistaken for an answer.
- The same bounds on every path (addresses, returns per address, days, orders): the
  store answers what Loop would have.
- A store-served view stays in memory for `lookup_memory_s`, encoded once: callers in
  that moment share its bytes, and before it lapses one store read refreshes it in the
  background, so under load no caller waits on the store.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import structlog

from loopdesk import store as db
from loopdesk.answering import after_answer
from loopdesk.customers.fetch_lock import FetchLock
from loopdesk.customers.lookup import LookupOptions, OrdersSource, ReturnsSource, lookup_customer
from loopdesk.customers.profile import usable_emails
from loopdesk.customers.singleflight import SingleFlight
from loopdesk.customers.view import CustomerView, LookupIssue, LookupMeta
from loopdesk.settings import Settings

log = structlog.get_logger(__name__)

LOCK_WAIT_S = 15.0
MEMORY_ENTRIES = 10_000
LOCK_POLL_S = 0.05
# Whole fetches stored after their answer, at most this many at a time (past it, a
# fetch is stored before it is answered); shutting down waits this long for them.
MAX_WRITES_BEHIND = 256
WRITES_DRAIN_S = 10.0
# A view held in memory is refreshed from the store once this share of its hold has
# passed, while it is still served: the refresh lands before the hold lapses.
REFRESH_AHEAD = 0.5


def encode(view: CustomerView) -> bytes:
    """The contract's JSON of a view, as the API sends it (compact UTF-8)."""
    return json.dumps(
        view.to_json(), ensure_ascii=False, allow_nan=False, separators=(",", ":")
    ).encode()


@dataclass(eq=False)
class Answer:
    """A lookup's view and its JSON, encoded at most once however many callers share it."""

    view: CustomerView
    _body: bytes | None = field(default=None, repr=False)

    def body(self) -> bytes:
        if self._body is None:
            self._body = encode(self.view)
        return self._body


@dataclass(eq=False)
class _Held:
    """A store-served answer in memory: served until `until`, refreshed from `refresh_at`."""

    answer: Answer
    until: float
    refresh_at: float


class CustomerService:
    def __init__(
        self,
        store: db.Store,
        returns: ReturnsSource,
        orders: OrdersSource | None,
        settings: Settings,
        *,
        source: Literal["loop", "sandbox"] = "loop",
        on_refresh: Callable[[list[str]], Awaitable[None]] | None = None,
    ) -> None:
        self.store = store
        self.returns = returns
        self.orders = orders
        self.settings = settings
        self.options = LookupOptions.from_settings(settings)
        self.source: Literal["loop", "sandbox"] = source
        self._flights: SingleFlight[CustomerView] = SingleFlight()
        self._reads: SingleFlight[Answer | None] = SingleFlight()
        self._lock = FetchLock(settings.redis_url) if settings.redis_url else None
        # Views read from the store, kept in memory for a moment: a console polling one
        # customer costs no query. Local writes clear it; other workers' writes show
        # within `lookup_memory_s`.
        self._recent: dict[str, _Held] = {}
        # Bumped by `invalidate`: a store read that began before a local write must not
        # put what it read back into memory.
        self._generation = 0
        self._refreshing: set[asyncio.Task[Any]] = set()
        # Whole fetches being stored after their answer was sent, each with the event
        # that begins it (set once that answer has left, or when a caller needs it).
        self._writes: dict[asyncio.Task[None], asyncio.Event] = {}
        self._pending: dict[str, asyncio.Task[None]] = {}
        # Writes after the answer that failed (logged each): `loopdesk_lookup_store_writes_failed`.
        self.store_writes_failed = 0
        # Told of the addresses after a whole fetch from Loop was stored (routing
        # compares the customer's outcome); it must not raise.
        self._on_refresh = on_refresh

    def invalidate(self) -> None:
        self._generation += 1
        self._recent.clear()

    async def aclose(self) -> None:
        """Writes after an answer are finished first (for up to `WRITES_DRAIN_S`)."""
        if self._writes:
            self._begin_writes()
            _, late = await asyncio.wait(set(self._writes), timeout=WRITES_DRAIN_S)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        for task in list(self._refreshing):
            task.cancel()
        if self._refreshing:
            await asyncio.wait(self._refreshing)
        if self._lock is not None:
            await self._lock.aclose()

    async def lookup(self, emails: list[str], *, fresh: bool = False) -> CustomerView:
        return (await self.answer(emails, fresh=fresh)).view

    async def answer(self, emails: list[str], *, fresh: bool = False) -> Answer:
        """`lookup`'s view with its JSON (what the API sends), shared while held."""
        usable = usable_emails(emails)
        addresses = usable[: self.options.max_emails]
        answer = await self._lookup(addresses, fresh=fresh)
        dropped = usable[self.options.max_emails :]
        if not dropped:
            return answer
        return Answer(_with_dropped(answer.view, dropped, self.options.max_emails))

    async def stored(self, emails: list[str]) -> CustomerView:
        """What the store holds for these addresses, however old, marked stale (with
        `asOf`, None when never fetched): no upstream call, for a caller that cannot wait
        for Loop (Gladly's lookup)."""
        addresses = usable_emails(emails)[: self.options.max_emails]
        now = datetime.now(UTC)
        async with self.store.reader() as session:
            fetched = await db.fetched_at(session, addresses)
            view = await self._read_view(session, addresses, fetched or now, now)
        errors = [] if fetched else [_never_fetched(bool(view.returns))]
        meta = view.meta.model_copy(
            update={
                "stale": True,
                "asOf": fetched.isoformat() if fetched else None,
                "errors": errors,
            }
        )
        return view.model_copy(update={"meta": meta})

    def held(self, emails: list[str]) -> Answer | None:
        """What `answer(emails)` would give from memory now, without waiting; None when
        it would wait (a store read, a fetch) or say more (dropped addresses). Raises
        `InvalidInput` as `answer` does."""
        usable = usable_emails(emails)
        if len(usable) > self.options.max_emails:
            return None
        return self._from_memory(_key(usable), usable)

    def _from_memory(self, key: str, addresses: list[str]) -> Answer | None:
        held = self._recent.get(key)
        if held is None:
            return None
        now = time.monotonic()
        if held.until <= now:
            return None
        if held.refresh_at <= now:
            held.refresh_at = held.until  # one refresh per held answer
            self._refresh_ahead(key, addresses)
        return held.answer

    async def _lookup(self, addresses: list[str], *, fresh: bool) -> Answer:
        key = _key(addresses)
        if not fresh:
            remembered = self._from_memory(key, addresses)
            if remembered is not None:
                return remembered
            await self._write_of(key)  # a fetch being stored: its result is what to read
            # Concurrent callers share one store read as they share one upstream fetch.
            stored = await self._reads.run(key, lambda: self._fresh_from_store(key, addresses))
            if stored is not None:
                return stored
        return Answer(await self._flights.run(key, lambda: self._fetch_once(key, addresses)))

    def _refresh_ahead(self, key: str, addresses: list[str]) -> None:
        """One store read in the background (shared with any caller that comes to need
        it), while the held answer is still served."""
        if self._reads.running(key):
            return

        async def refresh() -> None:
            answer = await self._reads.run(key, lambda: self._fresh_from_store(key, addresses))
            if answer is not None:
                answer.body()  # encoded here, not by the first caller to get it

        task = asyncio.create_task(refresh())
        self._refreshing.add(task)
        task.add_done_callback(self._refreshed)

    def _refreshed(self, task: asyncio.Task[Any]) -> None:
        self._refreshing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The held answer lapses as it would have; the next caller reads the store.
            log.warning("lookup.refresh_failed", error=type(task.exception()).__name__)

    async def _fresh_from_store(self, key: str, addresses: list[str]) -> Answer | None:
        """The stored view when it is fresher than the TTL, else None."""
        generation = self._generation
        now = datetime.now(UTC)
        ttl = timedelta(seconds=self.settings.lookup_ttl_s)
        async with self.store.reader() as session:  # one read transaction
            fetched = await db.fetched_at(session, addresses)
            if fetched is None or now - fetched >= ttl:
                return None
            view = await self._read_view(session, addresses, fetched, now)
        answer = Answer(view)
        if generation == self._generation:
            self._remember(key, answer, fetched + ttl)
        return answer

    def _remember(self, key: str, answer: Answer, stale_at: datetime) -> None:
        hold = min(self.settings.lookup_memory_s, (stale_at - datetime.now(UTC)).total_seconds())
        if hold <= 0:
            return
        if len(self._recent) >= MEMORY_ENTRIES:
            self._recent.clear()
        now = time.monotonic()
        self._recent[key] = _Held(answer, now + hold, now + hold * REFRESH_AHEAD)

    async def _fetch_once(self, key: str, addresses: list[str]) -> CustomerView:
        """Fetch, unless another worker holds this customer's lock: then wait for its
        result to reach the shared store (or for the lock to lapse). The lock is held
        until this fetch is stored, so the others find it there."""
        if self._lock is None:
            return await self._fetch(key, addresses)
        lock = self._lock
        started = datetime.now(UTC)
        deadline = started + timedelta(seconds=LOCK_WAIT_S)
        while (token := await lock.acquire(key)) is None:
            async with self.store.reader() as session:
                fetched = await db.fetched_at(session, addresses)
            if fetched is not None and fetched >= started:
                return await self._from_store(addresses, fetched, datetime.now(UTC))
            if datetime.now(UTC) > deadline:
                return await self._fetch(key, addresses)
            await asyncio.sleep(LOCK_POLL_S)
        return await self._fetch(key, addresses, then=lambda: lock.release(key, token))

    async def _fetch(
        self,
        key: str,
        addresses: list[str],
        *,
        then: Callable[[], Awaitable[None]] | None = None,
    ) -> CustomerView:
        """From Loop. A whole fetch is answered at once and stored right after it
        (`_store_behind`); a partial one is stored first, for the store to fill its gaps.
        `then` runs once the fetch is stored (or the fetch failed)."""
        # The answer's one store read, beside the upstream requests rather than after
        # (and once they are sent, not before).
        sent = asyncio.Event()
        granted = asyncio.create_task(self._count_granted(addresses, after=sent))
        granted.add_done_callback(lambda t: t.cancelled() or t.exception())  # seen, not lost
        behind = False
        try:
            raw: dict[str, Any] = {}
            view = await lookup_customer(
                addresses,
                self.returns,
                self.orders,
                self.options,
                source=self.source,
                raw_sink=raw,
                requests_sent=sent,
            )
            failed_lists = {e.email for e in view.meta.errors if e.source == "returns"}
            if failed_lists and len(failed_lists) == len(addresses):
                return await self._stale(addresses, view)
            view = view.model_copy(update={"exceptions_granted": await granted})
            # A field Loop sent unreadable is shown blank: the fetch itself is complete.
            if any(e.source != "fields" for e in view.meta.errors):
                await self._write_of(key)  # an earlier fetch's write lands first
                await self._write(addresses, view, raw, whole=False)
                return await self._fill_from_store(addresses, view)
            behind = self._store_behind(key, addresses, view, raw, then)
            return view
        finally:
            granted.cancel()
            if not behind and then is not None:
                await then()

    async def _count_granted(self, addresses: list[str], *, after: asyncio.Event) -> int:
        await after.wait()
        async with self.store.reader() as session:
            return await db.count_granted(session, addresses)

    def _store_behind(
        self,
        key: str,
        addresses: list[str],
        view: CustomerView,
        raw: dict[str, Any],
        then: Callable[[], Awaitable[None]] | None,
    ) -> bool:
        """Store a whole fetch after its answer is sent; False when too many writes are
        already under way (the caller stores it before answering). A lookup of the same
        customer waits for the write, so it is still answered from the store."""
        if len(self._writes) >= MAX_WRITES_BEHIND:
            return False

        begin = asyncio.Event()
        # One customer's writes land in the order of their fetches, each with its
        # re-routing done (an older write landing last would undo a newer one, and a
        # re-route reads the store as it is then). The one before is begun now: this
        # write's answer is going out, so its answer has gone or goes with it.
        previous = self._pending.get(key)
        if previous is not None:
            self._begin_writes(previous)

        async def store() -> None:
            try:
                await begin.wait()
                if previous is not None:
                    await asyncio.wait([previous])
                await self._write(addresses, view, raw, whole=True)
            except Exception as exc:  # the answer was sent: never lost silently
                self.store_writes_failed += 1
                log.error("lookup.store_write_failed", error=type(exc).__name__)
                return
            finally:
                if then is not None:
                    await then()
            self._recent.pop(key, None)  # a held answer older than this fetch
            if self._on_refresh is not None:
                await self._on_refresh(addresses)

        task = asyncio.create_task(store())
        self._writes[task] = begin
        self._pending[key] = task
        task.add_done_callback(lambda done: self._stored(key, done))
        after_answer(begin.set)
        return True

    async def written(self, emails: list[str]) -> None:
        """Wait until this customer's last fetch is in the store, for a caller that
        reads the store next (its write may otherwise wait for the caller's answer)."""
        await self._write_of(_key(usable_emails(emails)[: self.options.max_emails]))

    async def _write_of(self, key: str) -> None:
        """Wait for the write of this customer's fetch, if one is under way; begun now
        if it was held for an answer (perhaps the waiting caller's own)."""
        pending = self._pending.get(key)
        if pending is not None:
            self._begin_writes(pending)
            await asyncio.wait([pending])

    def _begin_writes(self, *tasks: asyncio.Task[None]) -> None:
        """Begin writes (these, else all) still held back for their answer: a caller
        now waits for them."""
        for task in tasks or list(self._writes):
            begin = self._writes.get(task)
            if begin is not None:
                begin.set()

    async def settled(self) -> None:
        """Wait for the writes of answers already sent (a fetch is answered before it
        is stored): then the store, and what was decided from it, holds every fetch."""
        while self._writes:
            self._begin_writes()
            await asyncio.wait(set(self._writes))

    def _stored(self, key: str, task: asyncio.Task[None]) -> None:
        self._writes.pop(task, None)
        if self._pending.get(key) is task:
            del self._pending[key]
        if task.cancelled():  # shutting down past the drain's bound
            self.store_writes_failed += 1
            log.error("lookup.store_write_failed", error="cancelled")

    async def _write(
        self, addresses: list[str], view: CustomerView, raw: dict[str, Any], *, whole: bool
    ) -> None:
        """What a fetch brought, in one transaction; `whole` marks the customer fetched."""
        async with self.store.session() as session:
            await db.upsert_returns(session, [(raw[r.id], r) for r in view.returns])
            failed_notes = {e.returnId for e in view.meta.errors if e.source == "notes"}
            await db.replace_notes_many(
                session,
                {r.id: (r.notes, None) for r in view.returns if r.id not in failed_notes},
            )
            if whole:
                # When the fetch was stored: waiting workers compare with their own start.
                await db.mark_fetched(session, addresses, datetime.now(UTC), view.orders)

    async def _fill_from_store(self, addresses: list[str], view: CustomerView) -> CustomerView:
        """Part of the fetch failed: what the store holds stands in for the missing part
        (an address's returns, a return's notes, the orders), and the view says stale."""
        errors = view.meta.errors
        lists = {e.email for e in errors if e.source == "returns" and e.email}
        notes = {e.returnId for e in errors if e.source == "notes" and e.returnId}
        orders_failed = any(e.source == "orders" for e in errors)
        since = datetime.now(UTC) - timedelta(days=self.options.returns_days)
        returns, orders, filled = list(view.returns), view.orders, False
        async with self.store.reader() as session:
            fetched = await db.fetched_at(session, addresses)
            if lists:
                known = {r.id for r in returns}
                # A list that failed part-way may have brought some: the limit holds.
                shown = Counter(db.normalize_email(r.customerEmail) for r in returns)
                stored = await db.returns_for_emails(session, sorted(lists), since=since)
                for ret in stored:  # newest first
                    address = db.normalize_email(ret.customerEmail)
                    if ret.id not in known and shown[address] < self.options.returns_per_email:
                        shown[address] += 1
                        returns.append(ret)
                        filled = True
            for index, ret in enumerate(returns):
                found = await db.get_return(session, ret.id) if ret.id in notes else None
                if found is not None and found[1].notes:
                    returns[index] = ret.with_notes(found[1].notes)
                    filled = True
            if orders_failed and not orders:
                orders = (await db.stored_orders(session, addresses))[: self.options.max_orders]
                filled = filled or bool(orders)
        if not filled:
            return view
        returns.sort(key=lambda r: (r.updated, r.id), reverse=True)
        meta = view.meta.model_copy(
            update={"stale": True, "asOf": fetched.isoformat() if fetched else None}
        )
        return view.model_copy(update={"returns": returns, "orders": orders, "meta": meta})

    async def _from_store(
        self, addresses: list[str], fetched: datetime, now: datetime
    ) -> CustomerView:
        async with self.store.reader() as session:
            return await self._read_view(session, addresses, fetched, now)

    async def _read_view(
        self, session: Any, addresses: list[str], fetched: datetime, now: datetime
    ) -> CustomerView:
        # Loop's list is asked for `returns_per_email` per address: the store keeps more
        # (webhooks, `sync`), so it answers with the same bound.
        returns = await db.returns_for_emails(
            session,
            addresses,
            since=now - timedelta(days=self.options.returns_days),
            limit_per_email=self.options.returns_per_email,
        )
        orders = await db.stored_orders(session, addresses)
        meta = LookupMeta(
            emails=addresses, source="store", fetchedAt=now.isoformat(), asOf=fetched.isoformat()
        )
        return CustomerView(
            returns=returns,
            orders=orders[: self.options.max_orders],
            meta=meta,
            exceptions_granted=await db.count_granted(session, addresses),
        )

    async def _stale(self, addresses: list[str], failed: CustomerView) -> CustomerView:
        """Loop failed for every address: what the store holds, marked stale."""
        now = datetime.now(UTC)
        async with self.store.session() as session:
            fetched = await db.fetched_at(session, addresses)
        stored = await self._from_store(addresses, fetched or now, now)
        errors = list(failed.meta.errors)
        if fetched is None:
            errors.append(_never_fetched(bool(stored.returns)))
        meta = stored.meta.model_copy(
            update={
                "stale": True,
                "asOf": fetched.isoformat() if fetched else None,
                "errors": errors,
            }
        )
        orders = failed.orders or stored.orders
        return stored.model_copy(update={"meta": meta, "orders": orders})


def _key(addresses: list[str]) -> str:
    return "|".join(sorted(a.lower() for a in addresses))


def _never_fetched(has_stored: bool) -> LookupIssue:
    """Loop failed for a customer it never answered for: say what the answer lacks."""
    if has_stored:
        message = (
            "Loop could not be reached and this customer was never fetched from it: "
            "only the returns webhooks or a sync stored are shown, possibly not all"
        )
    else:
        message = (
            "nothing could be fetched: Loop could not be reached and nothing is stored "
            "for these addresses, so no returns can be shown (not: the customer has none)"
        )
    return LookupIssue(source="lookup", code="nothing_fetched", message=message)


def _with_dropped(view: CustomerView, dropped: list[str], limit: int) -> CustomerView:
    notice = (
        f"only the first {limit} addresses are looked up; "
        f"{len(dropped)} more were not: see droppedEmails"
    )
    meta = view.meta.model_copy(
        update={"droppedEmails": dropped, "notices": [*view.meta.notices, notice]}
    )
    return view.model_copy(update={"meta": meta})
