"""Every setting of the project, in one table.

Settings come from environment variables. Each one is declared once here with its
default and help text; `python -m dashboard settings-doc` renders this table into
docs/settings.md, and a test keeps the two in step.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names it."""


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true/false, got {raw!r}")


def _positive_float(raw: str) -> float:
    value = float(raw)
    if value <= 0:
        raise ValueError(f"must be > 0, got {raw!r}")
    return value


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError(f"must be > 0, got {raw!r}")
    return value


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 65535:
        raise ValueError(f"not a TCP port: {raw!r}")
    return value


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError(f"must be a whole number > 0, got {raw!r}")
    return value


def _log_format(raw: str) -> str:
    if raw not in ("text", "json"):
        raise ValueError(f"expected text or json, got {raw!r}")
    return raw


def _optional_positive_float(raw: str) -> float | None:
    return None if raw.strip() == "" else _positive_float(raw)


def _key_prefix(raw: str) -> str:
    if not raw or any(c.isspace() for c in raw):
        raise ValueError(f"expected a non-empty prefix without spaces, got {raw!r}")
    return raw


def _timezone(raw: str) -> str:
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {raw!r}") from exc
    return raw


def _clock_time(raw: str) -> str:
    """"HH:MM" or empty (off)."""
    raw = raw.strip()
    if raw:
        hh, _, mm = raw.partition(":")
        if not (hh.isdigit() and mm.isdigit() and 0 <= int(hh) < 24 and 0 <= int(mm) < 60 and len(mm) == 2):
            raise ValueError(f"expected HH:MM or empty, got {raw!r}")
        raw = f"{int(hh):02d}:{mm}"
    return raw


def _map_kpi(raw: str) -> str:
    kpis = ("open_cases", "overdue", "closure_rate", "on_time_closure_rate", "occupancy", "visits",
            "resolution_rate")
    if raw not in kpis:
        raise ValueError(f"expected one of {', '.join(kpis)}, got {raw!r}")
    return raw


def _optional_bool(raw: str) -> bool | None:
    return None if raw.strip() == "" else _bool(raw)


def _environment(raw: str) -> str:
    if raw not in ("production", "demo"):
        raise ValueError(f"expected production or demo, got {raw!r}")
    return raw


def _networks(raw: str) -> tuple:
    import ipaddress

    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in raw.split(",") if part.strip())


def _crontab(raw: str) -> str:
    """Five crontab fields; checked by APScheduler's own parser."""
    from apscheduler.triggers.cron import CronTrigger

    if len(raw.split()) != 5:
        raise ValueError(f"expected five crontab fields (minute hour day month day-of-week), got {raw!r}")
    CronTrigger.from_crontab(raw, timezone="UTC")
    return raw


def _optional_crontab(raw: str) -> str:
    return "" if raw.strip() == "" else _crontab(raw.strip())


def _optional_days(raw: str) -> int | None:
    """A whole number of days (at least 1), or empty (keep forever)."""
    if raw.strip() == "":
        return None
    value = int(raw)
    if value < 1:
        raise ValueError(f"must be at least 1 day, or empty, got {raw!r}")
    return value


def _count(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError(f"must be 0 or more, got {raw!r}")
    return value


def _batch_rows(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= 20_000:
        raise ValueError(f"expected 1 to 20000, got {raw!r}")
    return value


def _hops(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 5:
        raise ValueError(f"expected 0 (no proxy) to 5, got {raw!r}")
    return value


def _rate_limit(raw: str) -> str:
    """Flask-Limiter syntax, e.g. `5 per minute` or `10/15 minutes`; checked by its parser."""
    from limits import parse_many

    if not parse_many(raw):
        raise ValueError(f"expected a rate such as '5 per minute', got {raw!r}")
    return raw


def _language(raw: str) -> str:
    if raw not in ("zh-CN", "en"):
        raise ValueError(f"expected zh-CN or en, got {raw!r}")
    return raw


@dataclass(frozen=True)
class Setting:
    name: str  # environment variable
    default: str
    help: str
    parse: Callable[[str], Any] = str


SETTINGS: tuple[Setting, ...] = (
    Setting("DATABASE_URL", "sqlite:///var/dashboard.db",
            "SQLAlchemy URL of the incident store. PostgreSQL: "
            "`postgresql+psycopg://user@host/db`. A relative SQLite path is resolved "
            "against the project folder."),
    Setting("DASHBOARD_TIMEZONE", "Asia/Shanghai",
            "Time zone that defines \"today\" and \"this week\", in which times are shown and naive "
            "times are imported, **when the store has no city profile**: the profile's `timezone` "
            "(`python -m dashboard city load`, docs/onboarding.md) wins over this setting everywhere "
            "(import, periods, wall, weekly reports); a mapping's `timezone:` wins for its own import. "
            "Timestamps are always stored in UTC.", _timezone),
    Setting("DASHBOARD_LANGUAGE", "zh-CN",
            "Default UI language (`zh-CN` or `en`); `?lang=` in a URL overrides it. A city profile's "
            "`language` wins over it.", _language),
    Setting("DASHBOARD_TITLE", "郑州市城市运行指挥中心",
            "Title shown in the page header and on the weekly reports when the store has no city "
            "profile; with one, the profile's `title` (default: from its `name`) in the default "
            "language wins."),
    Setting("DASHBOARD_TITLE_EN", "Zhengzhou City Operations Center",
            "Title shown in the navigation bar of English pages (`?lang=en`). Empty: `DASHBOARD_TITLE`."),
    Setting("DASHBOARD_HOST", "127.0.0.1", "Address the app listens on (`make run`, `python -m dashboard serve`)."),
    Setting("DASHBOARD_PORT", "8050", "Port the app listens on.", _port),
    Setting("DASHBOARD_WORKERS", "2", "gunicorn worker processes for `python -m dashboard serve`.", _positive_int),
    Setting("GUNICORN_THREADS", "4",
            "Threads per gunicorn worker (each serves one request at a time).", _positive_int),
    Setting("GUNICORN_TIMEOUT", "60",
            "Seconds a gunicorn worker may stay silent (one request running that long) before the "
            "master kills and replaces it.", _positive_int),
    Setting("GUNICORN_GRACEFUL_TIMEOUT", "30",
            "Seconds a worker gets to finish its requests after a restart or stop (SIGTERM, SIGHUP) "
            "before it is killed.", _positive_int),
    Setting("GUNICORN_KEEPALIVE", "5",
            "Seconds gunicorn keeps an idle client connection open. Behind a proxy keep the proxy's "
            "idle upstream timeout below it (deploy/Caddyfile: 4 s).", _positive_int),
    Setting("ACCESS_LOG", "true",
            "Whether `python -m dashboard serve` writes an access log line per request to standard "
            "output (client, request, status, bytes, seconds; `token=` values redacted).", _bool),
    Setting("PAGE_REFRESH_SECONDS", "1",
            "How often an open wall or home page asks the server for new figures. An unchanged "
            "answer is a few hundred bytes read from the cache, never the store (see "
            "docs/performance.md for the cost per display).", _positive_float),
    Setting("WALL_MAP_KPI", "open_cases",
            "The wall map's colouring when the URL has no `?kpi=`: `open_cases`, `overdue`, "
            "`closure_rate`, `on_time_closure_rate`, `occupancy`, `visits` or `resolution_rate`.", _map_kpi),
    Setting("WALL_RELOAD_AT", "04:30",
            "Local time (HH:MM, the city's time zone: the city profile's, else `DASHBOARD_TIMEZONE`) at which an open wall reloads itself once a "
            "day, after checking the server answers. Empty: no daily reload. Walls also reload "
            "when the server's build changes.", _clock_time),
    Setting("BUILD_ID", "",
            "Names this build of the app; an open wall reloads itself when it changes. Empty: a "
            "hash of the code and assets, computed at start.", str),
    Setting("DEMO_SEED", "20261126",
            "Random seed of the demo city; the same seed and `--now` give the same store.", int),
    Setting("SIMULATOR_RATE", "",
            "Live simulator: new case reports per second, city-wide, with quick lifecycle moves "
            "(for load tests). Empty: the demo city's own pace, its yearly volume spread by hour, "
            "weekday and season as in the seeded history (about 0.01-0.08 a second), with "
            "realistic dwell times. Visits and problems follow in proportion.",
            _optional_positive_float),
    Setting("DEMO_HISTORY_DAYS", "400",
            "Days of history `python -m dashboard demo` seeds into an empty store (at least this "
            "many, and back to 1 January of last year so year-to-date comparisons are complete).",
            int),
    Setting("DEMO_REPORT_WEEKS", "4",
            "Finished weeks whose reports `python -m dashboard demo` publishes in the background once "
            "the app answers (those missing from the archive; the newest first). Its seed keeps parking "
            "readings for one week more, which the oldest report compares with. 0: none.", _count),
    Setting("SIMULATOR_OCCUPANCY_SECONDS", "60",
            "Live simulator: seconds between two rounds of parking occupancy readings.", _positive_float),
    Setting("SIMULATOR_ENABLED", "true",
            "Whether `python -m dashboard demo` starts the live simulator. Set false in "
            "production, where the store is fed by the city's own systems.", _bool),
    Setting("SQLITE_BUSY_TIMEOUT_MS", "10000",
            "SQLite only: how long a connection waits for a lock before failing.", int),
    Setting("REDIS_URL", "",
            "Redis holding the shared snapshot, the poller's leader lock and the metrics "
            "figures, e.g. `redis://127.0.0.1:6379/0`. Empty: everything stays on this host "
            "(snapshot in `LOCAL_CACHE_DIR`, leader by file lock)."),
    Setting("CACHE_PREFIX", "cc",
            "Prefix of every Redis key (and of the local cache folder). Give each deployment "
            "sharing one Redis its own prefix.", _key_prefix),
    Setting("LOCAL_CACHE_DIR", "var/cache",
            "Host-local snapshot and leader lock, used without Redis and while Redis is "
            "unreachable; shared by the processes of one host. Relative paths are resolved "
            "against the project folder."),
    Setting("POLL_SECONDS", "5",
            "How often the poller recomputes the snapshot from the store when nothing is "
            "written (time alone moves figures: overdue cases, the hour).", _positive_float),
    Setting("CHANGE_CHECK_SECONDS", "0.5",
            "How often the leading poller checks whether cases, visits or problems were "
            "written (one statement of three index lookups) and, if so, polls at once instead "
            "of waiting for `POLL_SECONDS`: a new case is on every wall within about this "
            "plus a poll plus `PAGE_REFRESH_SECONDS`.", _positive_float),
    Setting("POLLER_ENABLED", "true",
            "Whether each web process takes part in the poller election (exactly one of "
            "them polls). Set false when the poller runs as its own process "
            "(`dashboard.poller.run_forever`).", _bool),
    Setting("LEADER_LOCK_SECONDS", "15",
            "Lifetime of the poller's leader lock: the lease row in the store on PostgreSQL, "
            "the Redis key on SQLite; the leader renews it every third of that and stops "
            "polling when it could not renew within 0.8 of it. A dead or stopped leader is "
            "replaced within about that long (plus one lease interval).", _positive_float),
    Setting("READY_MAX_AGE_SECONDS", "",
            "`/readyz` fails when the snapshot this host serves is older than this, and the "
            "screens show such a snapshot's sections as stale. Empty: "
            "3 × `POLL_SECONDS` + 10.", _optional_positive_float),
    Setting("REDIS_TIMEOUT_SECONDS", "0.5",
            "Connect and read timeout of every Redis call, so that a dead Redis never holds "
            "a request for long.", _positive_float),
    Setting("REDIS_RETRY_SECONDS", "5",
            "While Redis is unreachable the cache serves from `LOCAL_CACHE_DIR` and tries "
            "Redis again at most this often.", _positive_float),
    Setting("LOG_LEVEL", "INFO", "Python logging level."),
    Setting("MAX_REQUEST_BYTES", "1048576",
            "Largest request body accepted (bytes); a larger one is refused with 413 before it is read. "
            "A page's callbacks send a few kilobytes.", _positive_int),
    Setting("MAX_ROWS_PER_REQUEST", "1000",
            "Rows of the case list one request may ask for (all its grid blocks together; the grid asks "
            "100 at a time); more is refused with 400.", _positive_int),
    Setting("LOG_FORMAT", "text",
            "`text` (time level host [pid] logger: message) or `json` (one object per line with "
            "`ts`, `level`, `host`, `pid`, `logger`, `msg`), for the app's and gunicorn's lines alike.",
            _log_format),
    Setting("REPORTS_DIR", "var/reports",
            "Folder of the weekly reports' archive (published weeks, earlier versions, run "
            "records, the scheduler's job store and, without Redis, the export lock). Shared by "
            "every process that exports or serves `/snapshots`. Relative paths are resolved "
            "against the project folder.", str),
    Setting("REPORT_CRON", "0 8 * * mon",
            "When the report scheduler (`python -m dashboard reports`) exports the last finished "
            "week: five crontab fields in the city's time zone (the city profile's, else `DASHBOARD_TIMEZONE`). Name the day (`mon`): APScheduler 3 "
            "counts numeric days of the week from Monday = 0.", _crontab),
    Setting("REPORT_MISFIRE_GRACE_SECONDS", "518400",
            "A scheduled export missed while no scheduler was running (the app was down) still "
            "runs when one starts again within this long after the scheduled time (default 6 days).",
            _positive_float),
    Setting("REPORT_RETRY_MINUTES", "30",
            "After a failed export of the last finished week, the scheduler tries again this often "
            "until it succeeds.", _positive_float),
    Setting("REPORT_LOCK_SECONDS", "120",
            "Lifetime of the Redis export lock, renewed every third of that while an export runs; "
            "a dead exporter frees it within about that long.", _positive_float),
    Setting("REPORT_CHROMIUM", "/usr/bin/chromium",
            "The Chromium that prints the report's PDF and photographs the wall."),
    Setting("OCCUPANCY_RAW_DAYS", "35",
            "Days of raw parking occupancy readings kept; `python -m dashboard prune` folds older ones "
            "into one row per facility and hour (`occupancy_hourly`) and deletes them. The default keeps "
            "the last five weeks exact, so their weekly reports can be built again as first published. "
            "Empty: keep every reading. See docs/retention.md.", _optional_days),
    Setting("CASE_RETENTION_DAYS", "",
            "Empty (the default): cases and their events are kept forever, they are the city's record. "
            "A number of days: the prune deletes cases closed or voided, and unchanged, longer ago than "
            "that, with their events; open cases are never deleted. Fewer days than back to 1 January of "
            "last year changes the year's figures and their comparison.", _optional_days),
    Setting("REPORT_VERSIONS_KEPT", "3",
            "Earlier versions of a week's report (moved aside by `snapshot --force`) kept per week and "
            "scope, besides the published one; the prune deletes older ones. 0: keep none.", _count),
    Setting("PRUNE_BATCH_ROWS", "5000",
            "Rows the prune deletes per transaction (1 to 20000): short transactions, so the poller, "
            "the simulator and imports are never held up for long.", _batch_rows),
    Setting("PRUNE_CRON", "30 3 * * *",
            "When the report scheduler (`python -m dashboard reports`) runs the prune: five crontab "
            "fields in the city's time zone (daily at 03:30 by default). Empty: never; run "
            "`python -m dashboard prune` from the system's own scheduler instead.", _optional_crontab),
    Setting("DASHBOARD_ENV", "production",
            "`production` or `demo`. Production refuses to start without `SECRET_KEY` (32 characters "
            "or more) or with `AUTH_ENABLED=false`, and sends cookies over HTTPS "
            "only (unless `COOKIE_SECURE` says otherwise); `make run` sets `demo`, which keeps a "
            "random secret in `LOCAL_CACHE_DIR` and prints fresh demo passwords at each start.", _environment),
    Setting("AUTH_ENABLED", "true",
            "Whether pages and data need a login (and walls a display token). `false` opens "
            "everything: for development and automated tests only, refused in production.", _bool),
    Setting("SECRET_KEY", "",
            "Signs the session cookies and CSRF tokens; the same on every worker and host. "
            "Required in production, at least 32 characters (e.g. `python -c 'import secrets; "
            "print(secrets.token_hex(32))'`)."),
    Setting("COOKIE_SECURE", "",
            "Send the session cookie over HTTPS only. Empty: yes in production, no in the demo.",
            _optional_bool),
    Setting("SESSION_HOURS", "12", "How long a login lasts.", _positive_float),
    Setting("AUTH_CACHE_SECONDS", "30",
            "How long a process trusts a loaded user or display token before reading it again: "
            "a disabled user, a revoked wall token or a session ended by logout or a password, "
            "role or district change elsewhere loses access within this time.", float),
    Setting("LOGIN_RATE_LIMIT", "5 per minute",
            "Login attempts allowed per client address (Flask-Limiter syntax). Counted in Redis "
            "when `REDIS_URL` is set, else in the store, so the limit holds across workers and hosts. "
            "Behind a proxy set `TRUSTED_PROXY_HOPS`, or every client shares the proxy's address.", _rate_limit),
    Setting("LOGIN_ACCOUNT_RATE_LIMIT", "10 per 15 minutes",
            "Failed logins allowed per account name, from whatever addresses (Flask-Limiter "
            "syntax); then that name is refused until the window ends, even with the right password. "
            "Counted like `LOGIN_RATE_LIMIT`.", _rate_limit),
    Setting("TRUSTED_PROXY_HOPS", "0",
            "How many reverse proxies (the TLS proxy, a load balancer) stand in front of the app "
            "and set `X-Forwarded-For` / `X-Forwarded-Proto`; the client's address is taken that many "
            "hops back (werkzeug ProxyFix). 0: the socket's address, and the headers are ignored. "
            "Never more than the proxies you run: clients could then choose their own address.", _hops),
    Setting("METRICS_ALLOW", "",
            "Client networks allowed to read `/metrics` (comma-separated, e.g. `127.0.0.1/32,10.0.0.0/8`). "
            "Empty: any address.", _networks),
    Setting("METRICS_TOKEN", "",
            "When set, `/metrics` also needs `Authorization: Bearer <token>`."),
)

_BY_NAME = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class Settings:
    """Parsed settings. Build with `Settings.from_env()` or `Settings.from_env(overrides)`."""

    values: Mapping[str, Any] = field(default_factory=dict)
    city: Any = None  # the city profile laid over the values (dashboard/profile.py), or None

    @classmethod
    def from_env(cls, overrides: Mapping[str, Any] | None = None,
                 environ: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        overrides = dict(overrides or {})
        unknown = set(overrides) - set(_BY_NAME)
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        parsed: dict[str, Any] = {}
        for s in SETTINGS:
            if s.name in overrides and not isinstance(overrides[s.name], str):
                parsed[s.name] = overrides[s.name]
                continue
            raw = overrides.get(s.name, env.get(s.name, s.default))
            try:
                parsed[s.name] = s.parse(raw)
            except (TypeError, ValueError) as exc:
                raise SettingsError(f"setting {s.name}={raw!r} is invalid: {exc}") from exc
        return cls(parsed)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def with_city(self, profile) -> "Settings":
        """These settings under a city profile: its time zone, language and title win."""
        language = profile.language or self.values["DASHBOARD_LANGUAGE"]
        return Settings({**self.values, "DASHBOARD_TIMEZONE": profile.timezone, "DASHBOARD_LANGUAGE": language,
                         "DASHBOARD_TITLE": profile.title(language)}, city=profile)

    @property
    def database_url(self) -> str:
        return resolve_database_url(self["DATABASE_URL"])

    def engine(self, *, create: bool = False, **kwargs):
        """The one way to open the configured store (SQLite busy timeout included).
        `create=True` only where a command may make an empty SQLite file."""
        from datasource.engine import make_engine  # datasource stays out of `import dashboard.settings`

        return make_engine(self.database_url, busy_timeout_ms=self["SQLITE_BUSY_TIMEOUT_MS"], create=create,
                           **kwargs)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self["DASHBOARD_TIMEZONE"])

    @property
    def local_cache_dir(self) -> Path:
        path = Path(self["LOCAL_CACHE_DIR"])
        return path if path.is_absolute() else PROJECT_ROOT / path

    @property
    def reports_dir(self) -> Path:
        path = Path(self["REPORTS_DIR"])
        return path if path.is_absolute() else PROJECT_ROOT / path

    @property
    def ready_max_age(self) -> float:
        configured = self["READY_MAX_AGE_SECONDS"]
        return configured if configured is not None else 3 * self["POLL_SECONDS"] + 10


def resolve_database_url(url: str) -> str:
    """Make a relative SQLite path absolute against the project folder."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        return prefix + str(PROJECT_ROOT / url[len(prefix):])
    return url


def settings_markdown() -> str:
    """docs/settings.md, generated from SETTINGS."""
    lines = [
        "# Settings",
        "",
        "Every setting is an environment variable. This page is generated from",
        "`dashboard/settings.py` by `python -m dashboard settings-doc > docs/settings.md`;",
        "a test fails when the two differ.",
        "",
        "| name | default | meaning |",
        "|---|---|---|",
    ]
    for s in SETTINGS:
        default = f"`{s.default}`" if s.default else "(empty)"
        lines.append(f"| `{s.name}` | {default} | {s.help} |")
    return "\n".join(lines) + "\n"
