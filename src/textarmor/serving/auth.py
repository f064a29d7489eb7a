"""Optional API key: ``Authorization: Bearer <key>``, compared in constant time.

:func:`require_api_key` is a FastAPI dependency reading the key from ``app.state.api_key`` (``None``: open
server). Tests and embedders can replace it through ``app.dependency_overrides[require_api_key]``.
:func:`has_api_key` tells a route that answers everyone (liveness) whether the caller sent the key.
"""
from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

API_KEY_ENV = "TEXTARMOR_API_KEY"
_bearer = HTTPBearer(auto_error=False, description=f"The server's API key (--api-key or ${API_KEY_ENV}).")


def check_api_key(api_key: str | None) -> str | None:
    """The key a server is given, refused when empty: ``TEXTARMOR_API_KEY=""`` (say, an unset secret in a
    deployment template) must not quietly serve without authentication."""
    from textarmor.errors import ParameterError

    if api_key is not None and not api_key.strip():
        raise ParameterError(f"The API key is empty (--api-key or ${API_KEY_ENV}), which would leave the server "
                             f"open. Set a key, or unset {API_KEY_ENV} to serve without authentication.")
    if api_key is not None and not (api_key.isascii() and api_key.isprintable() and " " not in api_key):
        raise ParameterError("The API key must be printable ASCII without spaces (it travels in an HTTP header); "
                             "generate one with e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`.")
    return api_key


def has_api_key(request: Request,
                credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> bool:
    """Whether the request may see what the key guards: it sent the key, or the server has none."""
    expected: str | None = request.app.state.api_key
    if expected is None:
        return True
    given = credentials.credentials if credentials is not None else ""
    # compare_digest takes the same time wherever the first difference is, so timing leaks nothing.
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


def require_api_key(authorized: Annotated[bool, Depends(has_api_key)]) -> None:
    if not authorized:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            detail="Missing or wrong API key. Send the header 'Authorization: Bearer <key>'.",
                            headers={"WWW-Authenticate": "Bearer"})
