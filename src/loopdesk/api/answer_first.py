"""Each HTTP answer is sent before the work it does not need begins (`answering`)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loopdesk.answering import answering


class AnswerFirst:
    """Plain ASGI: the release follows the last body chunk's send; the scope's close
    releases too (an error, a client gone), so work handed over always begins."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with answering() as release:

            async def sending(message: Message) -> None:
                await send(message)
                if message["type"] == "http.response.body" and not message.get("more_body"):
                    release()

            await self.app(scope, receive, sending)
