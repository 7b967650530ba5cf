"""The city profile: the city's names, its time zone, its default language and the
subjects it records, in one YAML file loaded into the store with
`python -m dashboard city load PROFILE.yaml` (docs/onboarding.md).

The store keeps it, so every process of every host reads the same profile. Its time
zone is *the* zone of the deployment: the import reads naive times in it (unless a
mapping says `timezone:`), and "today", "this week", the wall and the weekly reports
follow it. Without a profile the settings stand: `DASHBOARD_TIMEZONE`,
`DASHBOARD_TITLE`, `DASHBOARD_LANGUAGE`, and every subject recorded.

    profile = load_file(Path("city.yaml"))       # ProfileError names the key at fault
    store(engine, profile)
    settings = with_profile(Settings.from_env())  # the profile's zone, title, language
    recorded_subjects(engine), zone(engine)
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from dashboard.settings import Settings
from datasource.profile import read_profile, write_profile

log = logging.getLogger(__name__)

SUBJECTS = ("cases", "enterprise", "parking")
LANGUAGES = ("zh-CN", "en")
KEYS = ("name", "title", "timezone", "language", "subjects")
DEMO_PROFILE = Path(__file__).resolve().parent.parent / "datasource" / "data" / "zhengzhou-profile.yaml"


class ProfileError(ValueError):
    """A profile that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class CityProfile:
    name_zh: str
    name_en: str
    timezone: str
    subjects: tuple[str, ...] = SUBJECTS
    title_zh: str = ""
    title_en: str = ""
    language: str | None = None  # None: DASHBOARD_LANGUAGE

    def __post_init__(self):
        if not self.title_zh:
            object.__setattr__(self, "title_zh", f"{self.name_zh}城市运行指挥中心")
        if not self.title_en:
            object.__setattr__(self, "title_en", f"{self.name_en} City Operations Center")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def title(self, lang: str) -> str:
        return self.title_en if lang == "en" else self.title_zh

    def records(self, subject: str) -> bool:
        return subject in self.subjects

    def to_json(self) -> dict:
        return asdict(self) | {"subjects": list(self.subjects)}

    @classmethod
    def from_json(cls, body: dict) -> "CityProfile":
        return cls(**{**body, "subjects": tuple(body.get("subjects", SUBJECTS))})


def _fail(origin: str, key: str, message: str):
    raise ProfileError(f"profile {origin}: `{key}`: {message}")


def _text(origin: str, key: str, value: Any, limit: int = 128) -> str:
    if not isinstance(value, str) or not value.strip():
        _fail(origin, key, "expected a non-empty text")
    value = value.strip()
    if len(value) > limit or any(ord(c) < 32 for c in value):
        _fail(origin, key, f"expected one line of at most {limit} characters")
    return value


def _pair(origin: str, key: str, value: Any, required: bool) -> tuple[str, str]:
    """{zh: ..., en: ...}; a plain text is both."""
    if value is None:
        if required:
            _fail(origin, key, "missing; e.g. `name: {zh: 芝加哥, en: Chicago}`")
        return "", ""
    if isinstance(value, str):
        text = _text(origin, key, value)
        return text, text
    if not isinstance(value, dict):
        _fail(origin, key, "expected `{zh: ..., en: ...}` or one text")
    unknown = set(value) - {"zh", "en"}
    if unknown:
        _fail(origin, f"{key}.{sorted(unknown)[0]}", "unknown key; known: zh, en")
    zh = _text(origin, f"{key}.zh", value["zh"]) if "zh" in value else None
    en = _text(origin, f"{key}.en", value["en"]) if "en" in value else None
    if zh is None and en is None:
        _fail(origin, key, "give zh, en or both")
    return zh or en, en or zh


def parse_profile(raw: Any, origin: str) -> CityProfile:
    """A profile from the YAML document's data; strict: an unknown key is an error."""
    if not isinstance(raw, dict):
        raise ProfileError(f"profile {origin}: expected a mapping of keys at the top")
    for key in raw:
        if key not in KEYS:
            _fail(origin, str(key), f"unknown key; known keys: {', '.join(KEYS)}")
    name_zh, name_en = _pair(origin, "name", raw.get("name"), required=True)
    title_zh, title_en = _pair(origin, "title", raw.get("title"), required=False)
    if "timezone" not in raw:
        _fail(origin, "timezone", "missing; the IANA name of the city's zone, e.g. America/Chicago")
    tz = _text(origin, "timezone", raw["timezone"], 64)
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        _fail(origin, "timezone", f"unknown time zone {tz!r} (an IANA name such as Asia/Shanghai)")
    language = None
    if raw.get("language") is not None:
        language = _text(origin, "language", raw["language"], 8)
        if language not in LANGUAGES:
            _fail(origin, "language", f"expected {' or '.join(LANGUAGES)}, got {language!r}")
    subjects = raw.get("subjects", list(SUBJECTS))
    if isinstance(subjects, str):
        subjects = [subjects]
    if not isinstance(subjects, list) or not subjects:
        _fail(origin, "subjects", f"expected a list of one or more of {', '.join(SUBJECTS)}")
    for i, s in enumerate(subjects):
        if s not in SUBJECTS:
            _fail(origin, f"subjects[{i}]", f"unknown subject {s!r}; known: {', '.join(SUBJECTS)}")
    ordered = tuple(s for s in SUBJECTS if s in subjects)
    return CityProfile(name_zh, name_en, tz, ordered, title_zh, title_en, language)


def load_file(path: Path) -> CityProfile:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"profile {path}: cannot read it: {exc}") from None
    try:
        # the safe loader: `subjects: [cases]`, `timezone: UTC`; no object tags
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProfileError(f"profile {path}: not valid YAML: {exc}") from None
    return parse_profile(raw, str(path))


def store(engine: Engine, profile: CityProfile) -> None:
    write_profile(engine, profile.to_json())


def store_demo(engine: Engine, timezone: str | None = None) -> CityProfile:
    """The demo city's profile (datasource/data/zhengzhou-profile.yaml), in the zone the
    demo was seeded in when that is another."""
    profile = load_file(DEMO_PROFILE)
    if timezone and timezone != profile.timezone:
        profile = CityProfile(**{**profile.to_json(), "subjects": profile.subjects, "timezone": timezone})
    store(engine, profile)
    return profile


def stored(engine: Engine) -> CityProfile | None:
    """The store's profile; None when it has none. Store errors propagate."""
    body = read_profile(engine)
    return CityProfile.from_json(body) if body else None


def recorded_subjects(engine: Engine) -> tuple[str, ...]:
    """The subjects the city records: its profile's; without a profile, those the store
    holds data of (cases, enterprises, parking facilities)."""
    profile = stored(engine)
    if profile is not None:
        return profile.subjects
    from datasource.queries import subjects_with_data

    return subjects_with_data(engine)


def zone(engine: Engine, settings: Settings | None = None) -> ZoneInfo:
    """The deployment's time zone: the profile's, else DASHBOARD_TIMEZONE."""
    profile = stored(engine)
    if profile is not None:
        return profile.tz
    return (settings or Settings.from_env()).tz


def _cache_path(settings: Settings) -> Path:
    digest = hashlib.sha256(settings.database_url.encode()).hexdigest()[:12]
    return settings.local_cache_dir / f"city-profile-{digest}.json"


def with_profile(settings: Settings, engine: Engine | None = None) -> Settings:
    """`settings` with the stored profile's time zone, title and language (the profile wins
    over DASHBOARD_TIMEZONE / DASHBOARD_TITLE / DASHBOARD_LANGUAGE). The profile read last is
    kept in LOCAL_CACHE_DIR: a process started while the store is unreachable uses it."""
    if settings.city is not None:
        return settings
    own = engine is None
    if own:
        from datasource.engine import make_engine

        engine = make_engine(settings.database_url, busy_timeout_ms=settings["SQLITE_BUSY_TIMEOUT_MS"],
                             create=False)
    cache = _cache_path(settings)
    try:
        profile = stored(engine)
    except (SQLAlchemyError, OSError) as exc:
        try:
            profile = CityProfile.from_json(json.loads(cache.read_text(encoding="utf-8")))
            log.warning("city profile unreadable in the store (%s); using the copy read last", exc.__class__.__name__)
        except (OSError, ValueError, TypeError):
            log.warning("city profile unreadable in the store (%s) and no copy kept; using DASHBOARD_TIMEZONE %s",
                        exc.__class__.__name__, settings["DASHBOARD_TIMEZONE"])
            return settings
    else:
        try:
            if profile is None:
                cache.unlink(missing_ok=True)
            else:
                cache.parent.mkdir(parents=True, exist_ok=True)
                tmp = cache.with_suffix(".tmp")
                tmp.write_text(json.dumps(profile.to_json(), ensure_ascii=False), encoding="utf-8")
                tmp.replace(cache)
        except OSError:
            pass  # a read-only cache folder costs only the fallback
    finally:
        if own:
            engine.dispose()
    return settings.with_city(profile) if profile is not None else settings
