"""People and walls: password hashing (argon2id), display tokens, the demo's accounts.

A display token is 32 random bytes (URL-safe text) shown once; the store keeps only its
sha256, so a leaked database does not open any wall.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine

from datasource import users

HASHER = PasswordHasher()  # argon2id with the library's current recommended cost
MIN_PASSWORD = 10
# verifying against this keeps a login for an unknown user as slow as for a known one
_DUMMY_HASH = HASHER.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise users.AccountError(f"a password needs at least {MIN_PASSWORD} characters")
    return HASHER.hash(password)


def check_password(engine: Engine, username: str, password: str) -> dict | None:
    """The active user with this name and password, or None (same work either way)."""
    user = users.user_by_name(engine, username)
    try:
        HASHER.verify(user["password_hash"] if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user["active"]:
        return None
    if HASHER.check_needs_rehash(user["password_hash"]):
        users.update_user(engine, username, password_hash=HASHER.hash(password))
    return user


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_display_token(engine: Engine, label: str, district: str | None = None) -> tuple[int, str]:
    """(id, token): the token is shown this once and never stored."""
    token = secrets.token_urlsafe(32)
    return users.create_token(engine, token_hash(token), label, district), token


def new_password() -> str:
    return secrets.token_urlsafe(12)


@dataclass(frozen=True)
class DemoAccounts:
    logins: list[tuple[str, str, str]]  # (username, password, what it may see)
    wall_token: str


DEMO_USERS = (("admin", "admin", None, "everything"), ("leader", "city_leader", None, "every district"),
              ("jinshui", "district_leader", "410105", "金水区 only"))


def demo_accounts(engine: Engine) -> DemoAccounts:
    """Fresh passwords for the demo's users (created when missing) and a new wall token,
    for `make run` to print: nothing fixed ships, each run has its own."""
    logins = []
    for name, role, district, sees in DEMO_USERS:
        password = new_password()
        if users.user_by_name(engine, name) is None:
            users.create_user(engine, name, hash_password(password), role, district)
        else:
            users.update_user(engine, name, password_hash=hash_password(password), active=True)
        logins.append((name, password, sees))
    _id, token = new_display_token(engine, "demo wall")
    return DemoAccounts(logins, token)
