"""What every response of the viewer carries, and who may ask for one.

`ViewerMiddleware` is a plain ASGI middleware (no per-request task, so
streamed responses pass straight through) that

- adds the security headers to every response, error pages included: a
  Content-Security-Policy that allows nothing but the viewer's own scripts,
  styles, images and requests (no inline script or style anywhere), no
  MIME sniffing, no Referer, no framing;
- refuses a request whose Host header names another host than the ones the
  viewer was told it is reached by (a page of another site that rebinds its
  DNS name to 127.0.0.1 cannot read a loopback viewer);
- with a token, refuses every request that does not carry it: as
  `Authorization: Bearer TOKEN`, or the cookie set by visiting any page once
  with `?token=TOKEN` (HttpOnly, SameSite=Strict; the visit is redirected to
  the same page without the token, so it stays out of history and bookmarks).
  Tokens are compared in constant time (`hmac.compare_digest`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Collection, Iterable
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
TOKEN_QUERY_PARAMETER = "token"
TOKEN_PATTERN = re.compile(r"[!#-+\--:<-\[\]-~]+")
"""What a token may hold: the characters a cookie value carries as they are
(printable ASCII but for space, quotes, comma, semicolon and backslash)."""
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
STATIC_PREFIX = "/static/"


def token_cookie_name(token: str) -> str:
    """The cookie a token is kept in. Cookies do not tell ports apart, so two
    viewers on one host with different tokens must not share one name."""
    return "dag_provenance_" + hashlib.sha256(token.encode()).hexdigest()[:8]


def host_of(header: str | None) -> str | None:
    """The host part of a Host header (`[::1]:8765` -> `::1`), lowercased."""
    if not header:
        return None
    header = header.strip().lower()
    if header.startswith("["):
        end = header.find("]")
        return header[1:end] if end > 0 else None
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class ViewerMiddleware:
    """Security headers, the Host check and the token (see the module)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str | None = None,
        allowed_hosts: Collection[str] | None = None,
    ) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.cookie_name = token_cookie_name(token) if token else ""
        self.allowed_hosts = (
            None
            if allowed_hosts is None
            else frozenset(h.lower().strip("[]") for h in allowed_hosts)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if (
            self.allowed_hosts is not None
            and host_of(headers.get("host")) not in self.allowed_hosts
        ):
            await _plain(send, scope, 400, "this viewer is not served under that host name")
            return
        if self.token is not None and not self._authorized(headers):
            offered = _query_token(scope)
            if (
                offered is not None
                and self._matches(offered)
                and scope["method"] in ("GET", "HEAD")
            ):
                await self._remember(scope, send)
            else:
                await _unauthorized(scope, send)
            return

        started = False
        static = scope["path"].startswith(STATIC_PREFIX)

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = _with_security_headers(message.get("headers", []), static)
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            # The server's own 500 page is sent outside this middleware:
            # send it from here, with the headers, and let the error go on to
            # be logged.
            if not started:
                await _plain(send, scope, 500, "internal error (the server log has the details)")
            raise

    def _matches(self, offered: str) -> bool:
        assert self.token is not None
        return hmac.compare_digest(offered.encode(), self.token)

    def _authorized(self, headers: Headers) -> bool:
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and self._matches(credentials.strip()):
            return True
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # a malformed Cookie header carries no token
            return False
        morsel = cookie.get(self.cookie_name)
        return morsel is not None and self._matches(morsel.value)

    async def _remember(self, scope: Scope, send: Send) -> None:
        """Set the cookie and send the browser to the same page without the token."""
        assert self.token is not None
        query = [
            (k, v)
            for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1"), True)
            if k != TOKEN_QUERY_PARAMETER
        ]
        raw_path: bytes | None = scope.get("raw_path")
        path = raw_path.decode("latin-1") if raw_path else scope["path"]
        # `//host/...` would be read as another site: keep the redirect on this one.
        location = "/" + path.lstrip("/") + ("?" + urlencode(query) if query else "")
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        cookie = (
            f"{self.cookie_name}={self.token.decode()}; Path=/; HttpOnly; SameSite=Strict{secure}"
        )
        await _respond(
            send,
            303,
            b"",
            [(b"location", location.encode("latin-1")), (b"set-cookie", cookie.encode())],
        )


def _query_token(scope: Scope) -> str | None:
    query: bytes = scope.get("query_string", b"")
    for key, value in parse_qsl(query.decode("latin-1"), True):
        if key == TOKEN_QUERY_PARAMETER:
            return value
    return None


def _with_security_headers(
    headers: Iterable[tuple[bytes, bytes]], static: bool
) -> list[tuple[bytes, bytes]]:
    given = list(headers)
    names = {name.lower() for name, _ in given}
    given.extend(h for h in SECURITY_HEADERS if h[0] not in names)
    if not static and b"cache-control" not in names:
        # Pages and API answers show data that changes and may be private.
        given.append((b"cache-control", b"no-store"))
    return given


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]],
    content_type: bytes = b"text/plain; charset=utf-8",
) -> None:
    all_headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        *headers,
    ]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": _with_security_headers(all_headers, False),
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _plain(send: Send, scope: Scope, status: int, message: str) -> None:
    if scope["path"].startswith("/api/"):
        body = json.dumps({"detail": message}).encode()
        await _respond(send, status, body, [], b"application/json")
    else:
        await _respond(send, status, (message + "\n").encode(), [])


async def _unauthorized(scope: Scope, send: Send) -> None:
    message = (
        "this viewer needs its token: send `Authorization: Bearer TOKEN`, or open the "
        "address `dag-provenance serve` printed (it ends in ?token=...) once in this browser"
    )
    challenge = [(b"www-authenticate", b'Bearer realm="dag-provenance"')]
    if scope["path"].startswith("/api/"):
        body = json.dumps({"detail": message}).encode()
        await _respond(send, 401, body, challenge, b"application/json")
    else:
        await _respond(send, 401, (message + "\n").encode(), challenge)


__all__ = [
    "CONTENT_SECURITY_POLICY",
    "LOOPBACK_HOSTS",
    "SECURITY_HEADERS",
    "ViewerMiddleware",
    "host_of",
    "token_cookie_name",
]
