"""Users and display tokens in the store: plain rows in, plain dicts out (no hashing here)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from datasource.schema import ROLES, DisplayToken, District, User


class AccountError(ValueError):
    """A user or token operation that cannot be done; the message says why."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _check(conn, role: str | None, district: str | None) -> None:
    if role is not None and role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if role == "district_leader" and not district:
        raise AccountError("a district leader needs --district")
    if role in ("admin", "city_leader") and district:
        raise AccountError(f"a {role} sees every district; leave --district out")
    if district and conn.execute(select(District.code).where(District.code == district)).first() is None:
        raise AccountError(f"unknown district code {district!r}")


def create_user(engine: Engine, username: str, password_hash: str, role: str,
                district: str | None = None) -> int:
    with engine.begin() as conn:
        _check(conn, role, district)
        try:
            return conn.execute(insert(User).values(
                username=username, password_hash=password_hash, role=role, district_code=district,
                active=True, created_at=_now()).returning(User.id)).scalar_one()
        except IntegrityError:
            raise AccountError(f"user {username!r} exists already") from None


def user_by_name(engine: Engine, username: str) -> dict | None:
    with engine.connect() as conn:
        row = conn.execute(select(User).where(User.username == username)).mappings().first()
    return dict(row) if row else None


def user_by_id(engine: Engine, user_id: int) -> dict | None:
    with engine.connect() as conn:
        row = conn.execute(select(User.__table__).where(User.id == user_id)).mappings().first()
    return dict(row) if row else None


def list_users(engine: Engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(
            select(User.id, User.username, User.role, User.district_code, User.active, User.created_at,
                   User.last_login_at).order_by(User.username)).mappings()]


# changing any of these ends the user's sessions (see User.session_epoch)
SESSION_FIELDS = ("password_hash", "active", "role", "district_code")


def update_user(engine: Engine, username: str, *, end_sessions: bool = True, **values) -> None:
    """Change password_hash, active, role or district_code of an existing user. Unless
    `end_sessions=False` (a rehash of the same password), the user's sessions end."""
    with engine.begin() as conn:
        if "role" in values or "district_code" in values:
            current = conn.execute(select(User.role, User.district_code).where(User.username == username)).first()
            if current is not None:
                _check(conn, values.get("role", current.role), values.get("district_code", current.district_code))
        if end_sessions and any(f in values for f in SESSION_FIELDS):
            values["session_epoch"] = User.session_epoch + 1
        done = conn.execute(update(User).where(User.username == username).values(**values)).rowcount
    if not done:
        raise AccountError(f"no user {username!r}")


def end_sessions(engine: Engine, user_id: int) -> None:
    """Every session of this user, on every worker and host, stops working (logout)."""
    with engine.begin() as conn:
        conn.execute(update(User).where(User.id == user_id).values(session_epoch=User.session_epoch + 1))


def record_login(engine: Engine, user_id: int) -> None:
    with engine.begin() as conn:
        conn.execute(update(User).where(User.id == user_id).values(last_login_at=_now()))


def create_token(engine: Engine, token_hash: str, label: str, district: str | None) -> int:
    with engine.begin() as conn:
        _check(conn, None, district)
        return conn.execute(insert(DisplayToken).values(
            token_hash=token_hash, label=label, district_code=district, created_at=_now())
            .returning(DisplayToken.id)).scalar_one()


def token_by_hash(engine: Engine, token_hash: str) -> dict | None:
    with engine.connect() as conn:
        row = conn.execute(select(DisplayToken.__table__).where(DisplayToken.token_hash == token_hash)).mappings().first()
    return dict(row) if row else None


def token_by_id(engine: Engine, token_id: int) -> dict | None:
    with engine.connect() as conn:
        row = conn.execute(select(DisplayToken.__table__).where(DisplayToken.id == token_id)).mappings().first()
    return dict(row) if row else None


def list_tokens(engine: Engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(
            select(DisplayToken.id, DisplayToken.label, DisplayToken.district_code, DisplayToken.created_at,
                   DisplayToken.revoked_at).order_by(DisplayToken.id)).mappings()]


def revoke_tokens_labelled(engine: Engine, label: str, keep: int | None = None) -> int:
    """Revoke every active token with this label but `keep`; returns how many."""
    cond = [DisplayToken.label == label, DisplayToken.revoked_at.is_(None)]
    if keep is not None:
        cond.append(DisplayToken.id != keep)
    with engine.begin() as conn:
        return conn.execute(update(DisplayToken).where(*cond).values(revoked_at=_now())).rowcount


def revoke_token(engine: Engine, token_id: int) -> None:
    with engine.begin() as conn:
        done = conn.execute(update(DisplayToken).where(DisplayToken.id == token_id,
                                                       DisplayToken.revoked_at.is_(None))
                            .values(revoked_at=_now())).rowcount
    if not done:
        raise AccountError(f"no active display token with id {token_id}")
