"""Login, roles, display tokens and the hardening around them (Flask-Login, Flask-WTF,
Flask-Limiter, argon2).

- People log in at /login (a plain HTML form with a CSRF token, rate limited per
  address). Roles: admin and city_leader see every district, district_leader their own.
- A wall opens `/wall?token=...`: the token (stored hashed, revocable) logs the browser
  in as a *display*, which may load the wall and nothing else.
- Every other page and data endpoint needs a login; /healthz, /readyz and /metrics do
  not (they carry no case data; /metrics can be limited, see dashboard/health.py).
- Scope is enforced on the server: `dashboard.scope.current_scope()` comes from here.
- Dash's JSON callback endpoint is exempt from the form CSRF token: browsers cannot
  send a cross-site `application/json` POST without a CORS preflight, and the session
  cookie is SameSite=Lax.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import threading
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

from flask import Response, abort, g, redirect, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf

from dashboard import accounts
from dashboard.scope import EVERYTHING, Scope
from dashboard.settings import SettingsError
from datasource import users

log = logging.getLogger(__name__)

PUBLIC_PREFIXES = ("/assets/", "/_dash-component-suites/")
PUBLIC_PATHS = {"/healthz", "/readyz", "/metrics", "/login", "/logout", "/_favicon.ico", "/favicon.ico"}
DISPLAY_PAGES = {"/wall"}
CALLBACK_PATH = "/_dash-update-component"
WALL_CALLBACK = "..wall-head.data"  # the only server callback a display may call


class Principal(UserMixin):
    """A logged-in person ("u:<id>") or wall display ("t:<id>")."""

    def __init__(self, key: str, name: str, role: str, district: str | None):
        self.key, self.name, self.role, self.district = key, name, role, district

    def get_id(self) -> str:
        return self.key

    @property
    def is_display(self) -> bool:
        return self.role == "display"

    def scope(self) -> Scope:
        if self.role in ("admin", "city_leader") or (self.is_display and self.district is None):
            return Scope(None, self.role, self.name)
        return Scope(frozenset({self.district}) if self.district else frozenset(), self.role, self.name)


class Principals:
    """Loads principals from the store, each kept `ttl` seconds: a disabled user or a
    revoked token loses access within that time without a store read per request."""

    def __init__(self, engine, ttl: float):
        self.engine, self.ttl = engine, ttl
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def load(self, key: str) -> Principal | None:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        principal = self._read(key)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (now, principal)
        return principal

    def _read(self, key: str) -> Principal | None:
        kind, _, raw = key.partition(":")
        if not raw.isdigit():
            return None
        if kind == "u":
            row = users.user_by_id(self.engine, int(raw))
            if row and row["active"]:
                return Principal(key, row["username"], row["role"], row["district_code"])
        elif kind == "t":
            row = users.token_by_id(self.engine, int(raw))
            if row and row["revoked_at"] is None:
                return Principal(key, row["label"], "display", row["district_code"])
        return None

    def for_token(self, token: str) -> Principal | None:
        row = users.token_by_hash(self.engine, accounts.token_hash(token))
        if row is None or row["revoked_at"] is not None:
            return None
        return Principal(f"t:{row['id']}", row["label"], "display", row["district_code"])


def secret_key(settings) -> str:
    """SECRET_KEY; in the demo a random one kept in the host folder (shared by workers)."""
    if settings["SECRET_KEY"]:
        return settings["SECRET_KEY"]
    if settings["DASHBOARD_ENV"] == "production":
        raise SettingsError("SECRET_KEY is required when DASHBOARD_ENV=production (e.g. the output of "
                            "`python -c 'import secrets; print(secrets.token_hex(32))'`)")
    path = Path(settings.local_cache_dir) / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        tmp = path.with_suffix(f".{secrets.token_hex(4)}")
        tmp.write_text(secrets.token_hex(32))
        tmp.chmod(0o600)
        tmp.replace(path)
    return path.read_text().strip()


def _wants_html() -> bool:
    return request.method == "GET" and not request.path.startswith("/_dash")


def _display_may(path: str) -> bool:
    """What a wall display may request: the wall page, Dash's plumbing, the wall's callback."""
    if path in DISPLAY_PAGES or path in ("/_dash-layout", "/_dash-dependencies"):
        return True
    if path != CALLBACK_PATH:
        return False
    body = request.get_json(silent=True) or {}
    output = str(body.get("output", ""))
    if output.startswith(WALL_CALLBACK):
        return True
    if "_pages_content" in output:  # Dash pages asks for the layout of the path shown
        pathnames = [i.get("value") for i in body.get("inputs", []) if isinstance(i, dict)
                     and i.get("id") == "_pages_location" and i.get("property") == "pathname"]
        return bool(pathnames) and all(p in DISPLAY_PAGES for p in pathnames)
    return False


def _safe_next(raw: str | None) -> str:
    """Only a path on this site (no scheme, no host, no //): never an open redirect."""
    if not raw:
        return "/"
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc or not raw.startswith("/") or raw.startswith("//"):
        return "/"
    return raw


def install(app, svc, settings, *, login_page, refused_page) -> None:
    """Wire login, roles, tokens, CSRF and rate limits into the app. `login_page(lang,
    csrf, next, error=None)` and `refused_page(lang, why)` render the two HTML pages."""
    server = app.server
    server.secret_key = secret_key(settings)
    secure = settings["COOKIE_SECURE"]
    if secure is None:
        secure = settings["DASHBOARD_ENV"] == "production"
    server.config.update(
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=secure,
        REMEMBER_COOKIE_HTTPONLY=True, REMEMBER_COOKIE_SAMESITE="Lax", REMEMBER_COOKIE_SECURE=secure,
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=settings["SESSION_HOURS"]),
        WTF_CSRF_TIME_LIMIT=None, WTF_CSRF_SSL_STRICT=secure)

    principals = Principals(svc.engine, settings["AUTH_CACHE_SECONDS"])
    manager = LoginManager()
    manager.init_app(server)
    manager.user_loader(principals.load)
    manager.session_protection = "basic"

    csrf = CSRFProtect(server)
    limiter = Limiter(get_remote_address, app=server, default_limits=[],
                      storage_uri=settings["REDIS_URL"] or "memory://",
                      key_prefix=f"{settings['CACHE_PREFIX']}:limits", strategy="moving-window",
                      in_memory_fallback_enabled=True, swallow_errors=True)

    def scope() -> Scope:
        user = current_user
        return user.scope() if getattr(user, "is_authenticated", False) else Scope(frozenset(), "anonymous")

    server.extensions["command_center_scope"] = scope

    def lang() -> str:
        requested = (request.args.get("lang") or request.form.get("lang") or "").lower()
        return "en" if requested.startswith("en") else settings["DASHBOARD_LANGUAGE"]

    @server.before_request
    def require_login():
        path = request.path
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            return None
        token = request.args.get("token")
        if token and path in DISPLAY_PAGES:
            principal = principals.for_token(token)
            if principal is None:
                log.warning("refused a display token on %s from %s", path, request.remote_addr)
                return Response(refused_page(lang(), "token"), status=403, mimetype="text/html")
            login_user(principal)
            g.principal = principal
            return None
        user = current_user
        if not getattr(user, "is_authenticated", False):
            if _wants_html():
                return redirect("/login?next=" + quote(request.full_path.rstrip("?"), safe="/"))
            return Response(json.dumps({"error": "login required"}), status=401, mimetype="application/json")
        if user.is_display and not _display_may(path):
            return Response(json.dumps({"error": "a wall display may only show the wall"}), status=403,
                            mimetype="application/json") if not _wants_html() else \
                Response(refused_page(lang(), "display"), status=403, mimetype="text/html")
        return None

    @server.route("/login", methods=["GET", "POST"])
    @limiter.limit(settings["LOGIN_RATE_LIMIT"], methods=["POST"],
                   error_message="too many login attempts")
    def login():
        nxt = _safe_next(request.values.get("next"))
        if request.method == "GET":
            return Response(login_page(lang(), generate_csrf(), nxt), mimetype="text/html")
        username = (request.form.get("username") or "").strip()
        row = accounts.check_password(svc.engine, username, request.form.get("password") or "")
        if row is None:
            log.warning("failed login for %r from %s", username[:64], request.remote_addr)
            return Response(login_page(lang(), generate_csrf(), nxt, error="bad_login"), status=401,
                            mimetype="text/html")
        users.record_login(svc.engine, row["id"])
        login_user(Principal(f"u:{row['id']}", row["username"], row["role"], row["district_code"]))
        return redirect(nxt)

    @server.route("/logout", methods=["GET", "POST"])
    def logout():  # a link (GET) is enough: the worst a forged one can do is log someone out
        logout_user()
        return redirect("/login")

    @server.errorhandler(429)
    def too_many(_exc):
        return Response(login_page(lang(), generate_csrf(), "/", error="rate_limited"), status=429,
                        mimetype="text/html")

    @server.errorhandler(CSRFError)
    def bad_csrf(_exc):
        return Response(login_page(lang(), generate_csrf(), "/", error="csrf"), status=400, mimetype="text/html")

    # Dash's JSON endpoints: see the module docstring for why the form token does not apply
    for rule in server.url_map.iter_rules():
        if rule.rule.startswith("/_dash-"):
            csrf.exempt(server.view_functions[rule.endpoint])

    @server.before_request
    def json_only_callbacks():
        if request.path == CALLBACK_PATH and request.method == "POST" and not request.is_json:
            abort(415)


def security_headers(app, settings) -> None:
    """CSP that Dash works under (its inline scripts allowed by hash), and the usual headers.
    The policy is built at the first response: Dash adds some inline scripts (pages'
    clientside callbacks) only when it sets itself up on the first request."""
    policy: list[str] = []

    def csp() -> str:
        if not policy:
            policy.append("; ".join([
                "default-src 'self'",
                "script-src 'self' " + " ".join(app.csp_hashes()),  # already quoted
                "style-src 'self' 'unsafe-inline'",  # plotly.js and React set styles at run time
                "img-src 'self' data: blob:",
                "font-src 'self' data:",
                "connect-src 'self'",
                "worker-src 'self' blob:",
                "object-src 'none'",
                "base-uri 'self'",
                "form-action 'self'",
                "frame-ancestors 'none'",
            ]))
        return policy[0]

    @app.server.after_request
    def headers(resp):
        resp.headers.setdefault("Content-Security-Policy", csp())
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        resp.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if settings["COOKIE_SECURE"] or settings["DASHBOARD_ENV"] == "production":
            resp.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return resp


__all__ = ["install", "security_headers", "Principal", "EVERYTHING"]
