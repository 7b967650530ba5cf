"""Login, roles, display tokens and the hardening around them (Flask-Login, Flask-WTF,
Flask-Limiter, argon2).

- People log in at /login (a plain HTML form with a CSRF token, rate limited per
  address and per account name: dashboard/ratelimit.py). Roles: admin and city_leader
  see every district, district_leader their own.
- A session names the user and the user's session epoch at login ("u:<id>:<epoch>");
  logout, a new password, disabling and a role or district change bump the epoch in the
  store, which ends every earlier session on every worker and host (within
  AUTH_CACHE_SECONDS elsewhere, at once in the process that did it).
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
import re
import secrets
import threading
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

from flask import Response, abort, g, redirect, request
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.middleware.proxy_fix import ProxyFix

from dashboard import accounts, ratelimit
from dashboard.scope import EVERYTHING, Scope
from dashboard.settings import SettingsError
from datasource import users

log = logging.getLogger(__name__)

PUBLIC_PREFIXES = ("/assets/", "/_dash-component-suites/")
PUBLIC_PATHS = {"/healthz", "/readyz", "/metrics", "/login", "/logout", "/_favicon.ico", "/favicon.ico"}
DISPLAY_PAGES = {"/wall"}
CALLBACK_PATH = "/_dash-update-component"
WALL_CALLBACK = "..wall-head.data"  # the only server callback a display may call


MIN_SECRET_KEY = 32


class Principal(UserMixin):
    """A logged-in person ("u:<id>:<session epoch>") or wall display ("t:<id>")."""

    def __init__(self, key: str, name: str, role: str, district: str | None):
        self.key, self.name, self.role, self.district = key, name, role, district

    @classmethod
    def for_user(cls, row: dict) -> "Principal":
        return cls(f"u:{row['id']}:{row['session_epoch']}", row["username"], row["role"], row["district_code"])

    @property
    def user_id(self) -> int | None:
        kind, _, rest = self.key.partition(":")
        return int(rest.partition(":")[0]) if kind == "u" else None

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
    """Loads principals from the store, each row kept `ttl` seconds: a disabled user, an
    ended session or a revoked token loses access within that time without a store read
    per request."""

    def __init__(self, engine, ttl: float):
        self.engine, self.ttl = engine, ttl
        self._cache: dict[str, tuple[float, dict | None]] = {}
        self._lock = threading.Lock()

    def load(self, key: str) -> Principal | None:
        kind, _, rest = key.partition(":")
        if kind == "u":
            raw_id, _, epoch = rest.partition(":")
            if not (raw_id.isdigit() and epoch.isdigit()):
                return None  # a session from before epochs, or forged: log in again
            row = self._row(f"u:{raw_id}", lambda: users.user_by_id(self.engine, int(raw_id)))
            if row and row["active"] and row["session_epoch"] == int(epoch):
                return Principal.for_user(row)
        elif kind == "t" and rest.isdigit():
            row = self._row(key, lambda: users.token_by_id(self.engine, int(rest)))
            if row and row["revoked_at"] is None:
                return Principal(key, row["label"], "display", row["district_code"])
        return None

    def forget(self, principal: Principal) -> None:
        """Drop what this process knows of the principal (its sessions just ended)."""
        with self._lock:
            self._cache.pop(f"u:{principal.user_id}", None)

    def _row(self, key: str, read) -> dict | None:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        try:
            row = read()
        except SQLAlchemyError:
            if hit is None:
                raise  # never seen: nothing to vouch for it (the request gets a 503)
            # the store is away: a wall must keep serving its snapshot, so the principal
            # stays as last read (revocations apply once the store answers again)
            log.warning("principal %s: store unreadable, last known row kept", key)
            return hit[1]
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (now, row)
        return row

    def for_token(self, token: str) -> Principal | None:
        row = users.token_by_hash(self.engine, accounts.token_hash(token))
        if row is None or row["revoked_at"] is not None:
            return None
        return Principal(f"t:{row['id']}", row["label"], "display", row["district_code"])


def check_production(settings) -> None:
    """Refuse to serve production with login turned off or a guessable SECRET_KEY."""
    if settings["DASHBOARD_ENV"] != "production":
        return
    if not settings["AUTH_ENABLED"]:
        raise SettingsError("AUTH_ENABLED=false is refused when DASHBOARD_ENV=production: it opens every "
                            "page and export to anyone (set DASHBOARD_ENV=demo for development)")
    if len(settings["SECRET_KEY"]) < MIN_SECRET_KEY:
        raise SettingsError(f"SECRET_KEY must be set to at least {MIN_SECRET_KEY} characters when "
                            f"DASHBOARD_ENV=production (it has {len(settings['SECRET_KEY'])}); e.g. the "
                            "output of `python -c 'import secrets; print(secrets.token_hex(32))'`")


def guard_server(server, settings) -> None:
    """Before anything else: refuse unsafe production settings, and behind
    TRUSTED_PROXY_HOPS proxies take the client's address and scheme from their
    X-Forwarded-For / X-Forwarded-Proto (werkzeug's ProxyFix), so that rate limits,
    logs and METRICS_ALLOW see the client rather than the proxy."""
    check_production(settings)
    hops = settings["TRUSTED_PROXY_HOPS"]
    if hops:
        server.wsgi_app = ProxyFix(server.wsgi_app, x_for=hops, x_proto=hops)


def secret_key(settings) -> str:
    """SECRET_KEY; in the demo a random one kept in the host folder (shared by workers)."""
    if settings["SECRET_KEY"]:
        return settings["SECRET_KEY"]
    if settings["DASHBOARD_ENV"] == "production":
        check_production(settings)  # raises: SECRET_KEY is empty
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
    limiter = ratelimit.make_limiter(server, settings, svc.engine)

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
    @limiter.limit(settings["LOGIN_RATE_LIMIT"], methods=["POST"], error_message="too many login attempts")
    @limiter.limit(settings["LOGIN_ACCOUNT_RATE_LIMIT"], key_func=ratelimit.account_key, methods=["POST"],
                   deduct_when=ratelimit.failed_login, error_message="too many failed logins for this account")
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
        login_user(Principal.for_user(row))
        return redirect(nxt)

    @server.route("/logout", methods=["GET", "POST"])
    def logout():  # a link (GET) is enough: the worst a forged one can do is log someone out
        user = current_user
        if getattr(user, "is_authenticated", False) and user.user_id is not None:
            # a copy of the cookie (kept, stolen) must not outlive the logout: end the epoch
            users.end_sessions(svc.engine, user.user_id)
            principals.forget(user)
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
        resp.headers.setdefault("Content-Security-Policy", csp())  # a route may have set its own
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        resp.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if settings["COOKIE_SECURE"] or settings["DASHBOARD_ENV"] == "production":
            resp.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return resp


HASH_SOURCE = re.compile(r"^'sha256-[A-Za-z0-9+/]{43}='$")


def report_policy(script_hashes) -> str:
    """The policy of an archived weekly report opened through the app (a file the exporter
    wrote: plotly.js and its drawing script inline, its data in JSON blocks). Only those
    scripts run, by hash; the document is sandboxed (an origin of its own: it cannot read
    the app's cookies or storage, nor call the app as the viewer), fetches nothing and
    cannot be framed. The app's own pages keep `security_headers`' policy."""
    hashes = [h for h in script_hashes if isinstance(h, str) and HASH_SOURCE.match(h)]
    return "; ".join([
        "sandbox allow-scripts",
        "default-src 'none'",
        "script-src " + (" ".join(hashes) or "'none'"),
        "style-src 'unsafe-inline'",  # the report's <style> and plotly.js's run-time styles
        "img-src data: blob:",
        "font-src data:",
        "connect-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ])


__all__ = ["report_policy", "install", "guard_server", "check_production", "security_headers", "Principal", "EVERYTHING"]
