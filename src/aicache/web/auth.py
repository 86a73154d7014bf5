"""The access token every request to a page or the API must carry.

A browser opens ``/?token=...`` once (the URL the command prints); the token
then travels in an HTTP-only, same-site cookie. Scripts send it as
``Authorization: Bearer ...``. Anything else gets 401.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse

from aicache.errors import AicacheError
from aicache.security.certificates import write_private

TOKEN_FILE = "dashboard.token"  # noqa: S105 - a file name, not a secret
"""The dashboard's token in a federation directory (written by ``server init``)."""
COOKIE = "aicache_token"
_MIN_LENGTH = 16  # a token shorter than this is guessable; refuse to serve with it


def new_token() -> str:
    """A fresh random token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def write_token(path: Path) -> str:
    """Write a fresh token to ``path`` (owner-only) and return it."""
    token = new_token()
    write_private(path, (token + "\n").encode())
    return token


def read_token(path: Path) -> str:
    """The token kept in ``path``.

    Raises
    ------
    AicacheError
        If the file is missing, unreadable or holds no usable token.
    """
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise AicacheError(
            f"no dashboard token at {path}",
            hint="`aicache server init` writes one; or pass --token-file FILE.",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AicacheError(f"cannot read the dashboard token {path}: {exc}") from exc
    if len(token) < _MIN_LENGTH or not token.isprintable() or " " in token:
        raise AicacheError(
            f"the dashboard token in {path} is not usable (at least {_MIN_LENGTH} printable "
            "characters, no spaces)",
            hint=f"Put a long random token in it, e.g. {new_token()}",
        )
    return token


def _presented(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get(COOKIE)


def require_token(app: FastAPI, token: str, *, secure_cookie: bool) -> None:
    """Refuse every request to ``app`` that does not carry ``token`` (401)."""
    expected = token.encode()

    def valid(value: str | None) -> bool:
        return value is not None and hmac.compare_digest(value.encode(), expected)

    @app.middleware("http")
    async def check(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        offered = request.query_params.get("token")
        if offered is not None and request.method == "GET":
            if not valid(offered):
                return _refused(request)
            # Take the token out of the address bar (and the history) into a cookie.
            query = "&".join(
                f"{k}={v}" for k, v in request.query_params.multi_items() if k != "token"
            )
            answer = RedirectResponse(request.url.path + (f"?{query}" if query else ""), 303)
            answer.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=secure_cookie)
            return answer
        if not valid(_presented(request)):
            return _refused(request)
        return await call_next(request)


def _refused(request: Request) -> Response:
    message = (
        "this needs the access token: open the address the command printed "
        "(it ends in ?token=...), or send Authorization: Bearer TOKEN"
    )
    headers = {"WWW-Authenticate": "Bearer"}
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": message}, status_code=401, headers=headers)
    return PlainTextResponse(f"401 Unauthorized: {message}\n", status_code=401, headers=headers)
