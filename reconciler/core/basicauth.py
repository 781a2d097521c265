"""user:password in base64: the `auth` field of Docker's config.json, and what an HTTP Basic
Authorization header carries. Used by the credential store and the registry client."""

from __future__ import annotations

import base64
import binascii


def encode(username: str, password: str) -> str:
    return base64.b64encode(f"{username}:{password}".encode()).decode()


def decode(text: str) -> tuple[str, str]:
    """(username, password); ValueError saying what is wrong when text is not base64 of user:password."""
    try:
        user, sep, password = base64.b64decode(text, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError):
        raise ValueError("is not base64 of user:password") from None
    if not sep:
        raise ValueError("has no ':' between user and password")
    return user, password


def header(username: str, password: str) -> str:
    """The value of an Authorization header for HTTP Basic auth."""
    return "Basic " + encode(username, password)
