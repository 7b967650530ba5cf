"""People and walls: password hashing (argon2id), display tokens, the demo's accounts.

A display token is 32 random bytes (URL-safe text) shown once; the store keeps only its
sha256, so a leaked database does not open any wall.
"""
from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine

from dashboard import passwords
from datasource import users

HASHER = PasswordHasher()  # argon2id with the library's current recommended cost
MIN_PASSWORD = passwords.MIN_LENGTH
# verifying against this keeps a login for an unknown user as slow as for a known one
_DUMMY_HASH = HASHER.hash(secrets.token_urlsafe(16))


def hash_password(password: str, username: str | None = None) -> str:
    """The argon2id hash of an acceptable password (dashboard/passwords.py says which are not)."""
    why = passwords.problem(password, username)
    if why is not None:
        raise users.AccountError(why)
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
        # the same password, hashed anew: its sessions go on
        users.update_user(engine, username, password_hash=HASHER.hash(password), end_sessions=False)
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
    logins: list[tuple[str, str | None, str]]  # (username, password or None if disabled, what it may see)
    wall_token: str


DEMO_USERS = (("admin", "admin", None, "everything"), ("leader", "city_leader", None, "every district"),
              ("jinshui", "district_leader", "410105", "金水区 only"))
DEMO_WALL = "demo wall"
DEMO_TOKEN_FILE = "demo_wall_token"


def demo_accounts(engine: Engine, folder: Path) -> DemoAccounts:
    """Fresh passwords for the demo's users (created when missing; a disabled one stays
    disabled) and the demo wall's token, for `make run` to print: nothing fixed ships."""
    logins = []
    for name, role, district, sees in DEMO_USERS:
        user = users.user_by_name(engine, name)
        if user is not None and not user["active"]:
            logins.append((name, None, sees))  # someone disabled it: the demo does not undo that
            continue
        password = new_password()
        if user is None:
            users.create_user(engine, name, hash_password(password), role, district)
        else:
            users.update_user(engine, name, password_hash=hash_password(password))
        logins.append((name, password, sees))
    return DemoAccounts(logins, demo_wall_token(engine, Path(folder)))


def demo_wall_token(engine: Engine, folder: Path) -> str:
    """The one city-wide demo wall token. The store keeps only its hash, so the token itself
    is kept in the host folder (0600) and reused while it is still active; otherwise a new
    one replaces every earlier demo wall token, which are revoked."""
    path = folder / DEMO_TOKEN_FILE
    if path.exists():
        token = path.read_text().strip()
        row = users.token_by_hash(engine, token_hash(token)) if token else None
        if row is not None and row["revoked_at"] is None and row["label"] == DEMO_WALL \
                and row["district_code"] is None:
            users.revoke_tokens_labelled(engine, DEMO_WALL, keep=row["id"])
            return token
    token_id, token = new_display_token(engine, DEMO_WALL)
    users.revoke_tokens_labelled(engine, DEMO_WALL, keep=token_id)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{DEMO_TOKEN_FILE}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token)
    tmp.replace(path)
    return token
