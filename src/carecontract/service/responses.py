"""Whole answers kept, encoded: a repeated request costs a lookup and a few ``stat`` calls.

Why: with every figure cached (service/context.py), what was left of a request was the framework's
own work — routing, dependency injection, Pydantic validation, JSON encoding, the role's filtering —
a few milliseconds of one core each, which at 32 clients on two cores is most of the latency budget.
So this plain ASGI layer keeps the encoded body and headers of every successful ``GET``, keyed by:

- the request: path and query string as sent;
- **who asks, by role scope**: the principal (role and organisation) the request's token names — the
  token is checked on every request, and one role's answer is never given to another;
- the **versions** it was computed from: the store version answered from, the payment books'
  version and the decision log's (service/context.py, ``Versions``: a ``stat`` each).

A new submission, close, payment or decision therefore changes the key, and the next request
computes afresh. Not kept: patient-level rows (``/api/events``, ``/api/quarantine``), anything but a
200, and an answer during which a book or the decision log changed (it could mix two versions).

It also pins the store version for the whole request (``PINNED``), so every figure of one response
comes from one version, and says which in ``X-Carecontract-Store-Version``; while a newer version is
being made ready in the background it answers from the last ready one and says so in
``X-Carecontract-Refreshing`` (docs/service.md).

**Slow answers are revalidated in the background.** Loading a new version's saved figures makes
the cube-based answers (measures, quality, the public tables) ready at once, but a few routes still
compute on the engine per version (accountability, case-mix adjusted ratios, SPC): seconds at 300k
events, a minute or more at national scale. An answer that took at least ``slow`` seconds (default
1, ``CARECONTRACT_SERVICE_SLOW_SECONDS``) and is asked for again after a new *store* version is
answered from the kept one, with ``X-Carecontract-Refreshing``, while the new one is computed once
in the background; the next request after it is done gets it. A new close, payment or decision
(a new book or decision log version) is always computed in the request: it is cheap, and a payment
must be seen at once.

Bounded: at most ``max_bytes`` of bodies (default 64 MiB, ``CARECONTRACT_SERVICE_ANSWER_BYTES``),
least recently used dropped first; one answer larger than an eighth of that is not kept.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

import anyio
from cachetools import LRUCache
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from carecontract.service.access import PUBLIC, Principal
from carecontract.service.context import PINNED, ServiceContext

DEFAULT_MAX_BYTES = 64 * 2**20
DEFAULT_SLOW_SECONDS = 1
NOT_KEPT = ("/api/events", "/api/quarantine")  # patient-level rows are never held in memory
VERSION_HEADER = b"x-carecontract-store-version"
REFRESHING_HEADER = b"x-carecontract-refreshing"


@dataclass(frozen=True)
class Answer:
    stamp: tuple  # (store version, books' version, decision log's version) it was computed from
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    took: float  # seconds the route took to make it


class Answers:
    """The kept answers, as ASGI middleware inside the hardening layer (which adds its headers and
    logs every request, kept answers included)."""

    def __init__(
        self, app: ASGIApp, outer: FastAPI, max_bytes: int = DEFAULT_MAX_BYTES, slow: float = DEFAULT_SLOW_SECONDS
    ) -> None:
        self.app, self.outer = app, outer
        self.max_bytes, self.slow = max_bytes, slow
        self._kept: LRUCache = LRUCache(max_bytes, getsizeof=lambda a: len(a.body) + 512)
        self._lock = threading.Lock()
        self._making: dict[tuple, asyncio.Task] = {}  # slow answers being made in the background

    def __len__(self) -> int:
        with self._lock:
            return len(self._kept)

    @property
    def nbytes(self) -> int:
        with self._lock:
            return int(self._kept.currsize)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ctx: ServiceContext = self.outer.state.context
        current = ctx.versions.store_version()
        if current == ctx.ready:
            served, refreshing = current, None
        else:  # may make a version ready (milliseconds from saved figures; a cold start waits)
            served, refreshing = await anyio.to_thread.run_sync(ctx.serving)
        extra = [(VERSION_HEADER, (served or "none").encode())]
        if refreshing is not None:
            extra.append((REFRESHING_HEADER, refreshing.encode()))
        who = self._principal(scope) if scope["method"] == "GET" and scope["path"] not in NOT_KEPT else None
        if who is None:  # not kept (or a token to refuse: the route says why)
            await self._answer(scope, receive, send, served, extra, None)
            return
        scope.setdefault("state", {})["principal"] = who  # for the access log
        stamp = (served, ctx.versions.book_version(), ctx.versions.decision_log_version())
        key = (scope["path"], scope.get("query_string", b""), who)
        with self._lock:
            kept = self._kept.get(key)
        if kept is not None and kept.stamp == stamp:
            await self._replay(send, kept, extra)
            return
        if kept is not None and kept.took >= self.slow and kept.stamp[1:] == stamp[1:] and refreshing is None:
            # a slow answer of an older store version: given while the new one is made, once
            if key not in self._making:
                self._making[key] = asyncio.ensure_future(self._make(dict(scope), key, stamp))
            older = [(VERSION_HEADER, (kept.stamp[0] or "none").encode()), (REFRESHING_HEADER, served.encode())]
            await self._replay(send, kept, older)
            return
        await self._answer(scope, receive, send, served, extra, (key, stamp))

    @staticmethod
    async def _replay(send: Send, kept: Answer, extra: list) -> None:
        await send({"type": "http.response.start", "status": kept.status, "headers": kept.headers + extra})
        await send({"type": "http.response.body", "body": kept.body})

    async def _make(self, scope: Scope, key: tuple, stamp: tuple) -> None:
        """Make and keep the answer to ``key`` for ``stamp``, with no client waiting for it."""
        scope["state"] = {}

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def discard(message: Message) -> None:
            return None

        try:
            await self._answer(scope, receive, discard, stamp[0], [], (key, stamp))
        except Exception:  # not kept: the next request asks again
            pass
        finally:
            self._making.pop(key, None)

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, served: str, extra: list, keep: tuple | None
    ) -> None:
        """The route's answer, with the version headers; kept under ``keep`` if it may be."""
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            elif message["type"] == "http.response.body" and keep is not None:
                chunks.append(message.get("body", b""))
            await send(message)

        token = PINNED.set(served)
        started = time.perf_counter()
        try:
            await self.app(scope, receive, capture)
        finally:
            PINNED.reset(token)
        took = time.perf_counter() - started
        if keep is None or start is None or start["status"] != 200:
            return
        key, stamp = keep
        ctx: ServiceContext = self.outer.state.context
        if stamp[1:] != (ctx.versions.book_version(), ctx.versions.decision_log_version()):
            return  # a book or the decision log changed while it was computed
        body = b"".join(chunks)
        if len(body) > self.max_bytes // 8:
            return
        answer = Answer(stamp, start["status"], list(start.get("headers", [])), body, took)
        with self._lock:
            self._kept[key] = answer

    def _principal(self, scope: Scope) -> Principal | None:
        """The caller by their token (the public with none); None for a token the route must refuse."""
        auth = None
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                auth = value.decode("latin-1")
                break
        if auth is None:
            return PUBLIC
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self.outer.state.tokens.principal(token.strip())
