"""Optional API key: ``Authorization: Bearer <key>``, compared in constant time.

:func:`require_api_key` is a FastAPI dependency reading the key from ``app.state.api_key`` (``None``: open
server). Tests and embedders can replace it through ``app.dependency_overrides[require_api_key]``.
"""
from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

API_KEY_ENV = "TEXTARMOR_API_KEY"
_bearer = HTTPBearer(auto_error=False, description=f"The server's API key (--api-key or ${API_KEY_ENV}).")


def require_api_key(request: Request,
                    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    expected: str | None = request.app.state.api_key
    if expected is None:
        return
    given = credentials.credentials if credentials is not None else ""
    # compare_digest takes the same time wherever the first difference is, so timing leaks nothing.
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            detail="Missing or wrong API key. Send the header 'Authorization: Bearer <key>'.",
                            headers={"WWW-Authenticate": "Bearer"})
