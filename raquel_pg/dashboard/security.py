"""The dashboard's guards: the access token or, without one, the loopback Host (every request), and
the CSRF token (every action).

Access token: when the dashboard has one (required when it is bound to an
address other than loopback), every request must carry it, as
``Authorization: Bearer <token>``, as the ``raquel_pg_token`` cookie, or once
as ``?token=<token>`` in a page's address, which sets the cookie (HttpOnly,
SameSite=Strict) and redirects to the same address without it. Anything else
gets 401. Tokens are compared in constant time.

Loopback Host: a dashboard without a token (it then listens on loopback only)
answers only requests whose ``Host`` is a loopback name (localhost,
127.0.0.0/8, ::1), else 421. A page of another site whose name its owner made
resolve to 127.0.0.1 (DNS rebinding) is then same-origin with nothing here:
it can neither read a page (and the CSRF token in it) nor act.

CSRF: each dashboard process draws a random token; every form carries it in
a hidden field, and an action is refused (403) unless its form sends it back
and, when the browser says where the request comes from (Origin), that is
this dashboard. Another site's page cannot read the token, so it cannot
forge an action. The notice an action redirects to (``?notice=...``) is signed
with the same secret: a link that carries a notice of its own making shows none.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from urllib.parse import urlencode, urlsplit

from starlette.datastructures import URL
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

#: The cookie that carries the access token after ``?token=``.
TOKEN_COOKIE = "raquel_pg_token"


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def same(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a token given by a client with the expected one."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


class TokenGuard:
    """ASGI middleware: lets a request through only with the access token (see the module)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        authorization = connection.headers.get("authorization", "")
        bearer = authorization[7:] if authorization.lower().startswith("bearer ") else None
        if same(bearer, self.token) or same(connection.cookies.get(TOKEN_COOKIE), self.token):
            await self.app(scope, receive, send)
            return
        response: Response
        if same(connection.query_params.get("token"), self.token):
            rest = [(k, v) for k, v in connection.query_params.multi_items() if k != "token"]
            target = URL(scope=scope).replace(query=urlencode(rest)) if rest else URL(scope=scope).replace(query="")
            response = RedirectResponse(target.path + (f"?{target.query}" if target.query else ""), 303)
            response.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="strict")
        else:
            response = PlainTextResponse(
                "401: this dashboard needs its access token (open it with ?token=..., or send "
                "Authorization: Bearer ...)\n",
                401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        await response(scope, receive, send)


class LoopbackHostGuard:
    """ASGI middleware: answers only requests addressed to a loopback name (see the module)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = HTTPConnection(scope).headers.get("host", "")
        try:
            name = urlsplit(f"//{host}").hostname or ""
        except ValueError:  # an unbalanced bracket, a bad port
            name = ""
        if is_loopback(name):
            await self.app(scope, receive, send)
            return
        response = PlainTextResponse(
            f"421: this dashboard answers only requests addressed to localhost, 127.0.0.1 or ::1, not {host!r} "
            "(behind a proxy or on another address, give it a --token)\n",
            421,
        )
        await response(scope, receive, send)


class Csrf:
    """The process's CSRF token and the check of an action's request."""

    def __init__(self) -> None:
        self.token = secrets.token_urlsafe(32)

    def sign(self, notice: str) -> str:
        """The signature of a notice this dashboard shows after an action."""
        return hmac.new(self.token.encode(), notice.encode(), hashlib.sha256).hexdigest()[:32]

    def signed(self, notice: str | None, signature: str | None) -> str | None:
        """``notice`` when ``signature`` is this dashboard's for it, else None (nothing to show)."""
        return notice if notice is not None and same(signature, self.sign(notice)) else None

    def check(self, request: Request, form_token: str | None) -> str | None:
        """None when ``request`` may act, else why not."""
        if not same(form_token, self.token):
            return "missing or wrong CSRF token (reload the page and try again)"
        origin = request.headers.get("origin")
        if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
            return f"cross-origin request from {origin} refused"
        return None
