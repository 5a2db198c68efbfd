"""The server's outer wall: a pure ASGI middleware that checks every request before routing.

Host header (DNS-rebinding protection), body size (413, with or without Content-Length),
JSON-only POST bodies (415: a foreign web page cannot send one without a CORS preflight),
and safety headers on every answer. Pure ASGI (no ``BaseHTTPMiddleware``), so it adds no
task per request.
"""

from __future__ import annotations

import json

#: Headers added to every answer that does not set them itself.
SAFETY_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                  (b"x-frame-options", b"DENY")]


class Guard:
    """ASGI middleware: Host check, body size limit, JSON-only POST, and safety headers.

    Args:
        app: the ASGI app inside.
        limits: the :class:`~mlmtool.server.schemas.Limits` (``max_body_bytes``).
        allowed_hosts: Host names answered (port ignored); None = any.
    """

    def __init__(self, app, limits, allowed_hosts):
        self.app = app
        self.limits = limits
        self.allowed = None if allowed_hosts is None else {h.strip("[]").lower() for h in allowed_hosts}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        refusal = self._refusal(headers)
        if refusal is not None:
            return await send_json(send, *refusal)
        receive_next = receive
        if scope["method"] in ("POST", "PUT", "PATCH"):
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype != "application/json":
                return await send_json(send, 415, "the body must be JSON: send Content-Type: application/json")
            body = await self._read_body(receive, send)
            if body is None:
                return
            receive_next = _replay(body, receive)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                have = {k.lower() for k, _ in message.get("headers", [])}
                message = dict(message)
                message["headers"] = list(message.get("headers", [])) + [h for h in SAFETY_HEADERS
                                                                         if h[0] not in have]
            await send(message)

        await self.app(scope, receive_next, send_with_headers)

    def _too_big(self) -> str:
        return f"the request body is larger than {self.limits.max_body_bytes} bytes (the limit max_body_bytes)"

    def _refusal(self, headers: dict[str, str]) -> tuple[int, str] | None:
        """``(status, message)`` for a foreign Host or a bad or too large Content-Length, else None."""
        if self.allowed is not None:
            host = host_name(headers.get("host", ""))
            if host not in self.allowed:
                return 400, f"host '{host[:80]}' is not served here (the server answers only to its own address)"
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return 400, "Content-Length is not a number"
            if int(length) > self.limits.max_body_bytes:
                return 413, self._too_big()
        return None

    async def _read_body(self, receive, send) -> bytes | None:
        """The whole (small) body, counting bytes even without Content-Length; None when the
        client left or the body is too large (then 413 was sent)."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limits.max_body_bytes:
                await send_json(send, 413, self._too_big())
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _replay(body: bytes, receive):
    """A ``receive`` that gives the app ``body`` (already read) once, then the client's own."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def host_name(host: str) -> str:
    """The host of a Host header without its port (``[::1]:8000`` → ``::1``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


async def send_json(send, status: int, message: str) -> None:
    """Answer a request from the middleware with ``{"error": message, "status": status}``."""
    body = json.dumps({"error": message, "status": status}).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"x-content-type-options", b"nosniff")]})
    await send({"type": "http.response.body", "body": body})
