"""Who may reach the server at all: host names, origins, sessions, request bodies.

One pure-ASGI middleware in front of everything (pages, their websockets, static files, the
API), so no route can be added that skips it:

- ``Host`` must be a name this server is served as (DNS rebinding: a page on evil.example that
  resolves to 127.0.0.1 is refused);
- websockets and state-changing requests (POST, PUT, PATCH, DELETE) that carry an ``Origin``
  must come from this server's own origin (cross-site requests with the session cookie);
- pages, their websockets and assets need a signed-in session, else a redirect to /login
  (a websocket is closed); the API authenticates itself with bearer tokens;
- API request bodies must be JSON (415) and at most MAX_API_BODY bytes (413).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import quote, urlsplit

from itsdangerous import BadSignature, Signer

log = logging.getLogger("nautilus_workbench.access")

SESSION_COOKIE = "workbench_session"
MAX_API_BODY = 1024 * 1024
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# Reachable without a session: the sign-in page itself, the API (bearer tokens), the favicon.
PUBLIC_PREFIXES = ("/login", "/api/", "/favicon.ico")


@dataclass(frozen=True)
class ServedAs:
    """The names and origins this server answers to."""

    hosts: frozenset[str]  # "localhost:5006", "127.0.0.1:5006", ... (lower case, with port)
    scheme: str = "http"
    extra: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def build(cls, address: str, port: int, extra_hosts: list[str], tls: bool) -> ServedAs:
        names = {"localhost", "127.0.0.1", "[::1]"}
        if address not in ("0.0.0.0", "::", "127.0.0.1", "localhost"):
            names.add(address.lower())
        hosts = {f"{n}:{port}" for n in names}
        default_port = 443 if tls else 80
        if port == default_port:
            hosts |= names
        for host in extra_hosts:
            host = host.strip().lower()
            hosts.add(host if ":" in host.strip("[]").split("]")[-1] else f"{host}:{port}")
        return cls(frozenset(hosts), "https" if tls else "http", tuple(extra_hosts))

    def host_allowed(self, host: str) -> bool:
        return host.lower() in self.hosts

    def origin_allowed(self, origin: str) -> bool:
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and parts.netloc.lower() in self.hosts


class SessionCookie:
    """Signs and reads the session cookie: the session's random secret, signed with the cookie
    secret kept in the state folder (a forged or altered cookie is rejected before any lookup)."""

    def __init__(self, secret: str, secure: bool) -> None:
        self._signer = Signer(secret, salt="workbench-session")
        self.secure = secure

    def value(self, session_secret: str) -> str:
        return self._signer.sign(session_secret).decode()

    def session_secret(self, cookie_value: str | None) -> str | None:
        if not cookie_value:
            return None
        try:
            return self._signer.unsign(cookie_value).decode()
        except BadSignature:
            return None


def cookies_of(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    jar = SimpleCookie()
    for name, value in headers:
        if name == b"cookie":
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # noqa: BLE001 - a malformed cookie header is no session
                return {}
    return {k: m.value for k, m in jar.items()}


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


class AccessGate:
    """The ASGI middleware described in the module docstring."""

    def __init__(self, app, served_as: ServedAs, cookie: SessionCookie,
                 session_valid: Callable[[str], Awaitable[bool]]) -> None:
        self.app = app
        self.served_as = served_as
        self.cookie = cookie
        self.session_valid = session_valid

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers", [])
        path = scope.get("path", "/")
        host = _header(headers, b"host") or ""
        if not self.served_as.host_allowed(host):
            log.warning("refused a request for host %r (%s)", host, path)
            await self._refuse(scope, send, 400, f"This server is not served as {host!r}.")
            return
        origin = _header(headers, b"origin")
        cross_site = origin is not None and not self.served_as.origin_allowed(origin)
        if cross_site and (kind == "websocket" or scope.get("method") in UNSAFE_METHODS):
            log.warning("refused a cross-origin %s from %r to %s", kind, origin, path)
            await self._refuse(scope, send, 403, "Requests from another site are refused.")
            return
        if path.startswith("/api/"):
            if kind == "http" and not await self._api_body_ok(scope, send):
                return
            await self.app(scope, self._limited(receive) if kind == "http" else receive, send)
            return
        if path.startswith(PUBLIC_PREFIXES) or path.startswith("/ws/"):
            await self.app(scope, receive, send)
            return
        secret = self.cookie.session_secret(cookies_of(headers).get(SESSION_COOKIE))
        if secret is None or not await self.session_valid(secret):
            if kind == "websocket":
                await send({"type": "websocket.close", "code": 4401})
                return
            target = path + (f"?{scope['query_string'].decode('latin-1')}"
                             if scope.get("query_string") else "")
            await self._redirect(send, f"/login?next={quote(target, safe='/')}")
            return
        await self.app(scope, receive, send)

    async def _api_body_ok(self, scope: dict, send: Send) -> bool:
        headers = scope.get("headers", [])
        length = _header(headers, b"content-length")
        chunked = (_header(headers, b"transfer-encoding") or "").lower() == "chunked"
        has_body = chunked or (length is not None and length.strip() not in ("", "0"))
        if not has_body:
            return True
        if length is not None and length.isdigit() and int(length) > MAX_API_BODY:
            await self._refuse(scope, send, 413, f"The request body is larger than "
                                                 f"{MAX_API_BODY // 1024} KiB.")
            return False
        kind = (_header(headers, b"content-type") or "").split(";")[0].strip().lower()
        if kind != "application/json":
            await self._refuse(scope, send, 415, "Send the request body as application/json "
                                                 f"(it was {kind or 'without a Content-Type'}).")
            return False
        return True

    @staticmethod
    def _limited(receive: Receive) -> Receive:
        """Stop reading a body that grows past MAX_API_BODY (chunked bodies carry no length)."""
        seen = 0

        async def read() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > MAX_API_BODY:
                    raise BodyTooLarge()
            return message

        return read

    async def _refuse(self, scope: dict, send: Send, status: int, message: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4000 + status})
            return
        body = json.dumps({"error": message}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    async def _redirect(send: Send, location: str) -> None:
        await send({"type": "http.response.start", "status": 303,
                    "headers": [(b"location", location.encode("latin-1")),
                                (b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})


class BodyTooLarge(Exception):
    """A chunked API body grew past MAX_API_BODY; the API answers 413."""
