"""HEAD answered like GET, without the body, on every route.

FastAPI's ``@router.get`` registers GET only, so link checkers and proxies
that probe with HEAD got 405 from every page and API route. HTTP says a HEAD
answer carries the same status and headers as GET (RFC 9110, section 9.3.2);
this ASGI middleware runs the GET and drops the body, so nothing is
duplicated per route. Static files answer HEAD by themselves and pass
through the same way.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    """Serve ``HEAD`` by running ``GET`` and sending its status and headers only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)
