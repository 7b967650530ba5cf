"""`python -m dashboard ...`: database, demo city, simulator, import, serving."""
from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

from dashboard.settings import PROJECT_ROOT, Settings, SettingsError, settings_markdown

log = logging.getLogger("dashboard")

SCALES = {"100k": 100_000, "1m": 1_000_000, "10m": 10_000_000}
# commands that work in the city's time zone: the stored city profile's, else DASHBOARD_TIMEZONE
# (`seed` makes the demo city and writes its profile; `serve` and `demo` start processes
# that read the profile themselves)
CITY_COMMANDS = ("simulate", "import", "tokens", "poll", "snapshot", "reports", "prune")


def _scale(raw: str) -> int:
    value = SCALES.get(raw.lower())
    if value is None:
        try:
            value = int(raw.replace("_", "").replace(",", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected 100k, 1M, 10M or a number of cases, got {raw!r}")
    if value <= 0:
        raise argparse.ArgumentTypeError("the scale must be a positive number of cases")
    return value


def _when(raw: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO time: {raw!r}")
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a time zone, e.g. {raw}+08:00")
    return value


@contextmanager
def _store(settings: Settings):
    """An engine on the configured store, disposed when the command is done."""
    engine = settings.engine(create=True)
    try:
        yield engine
    finally:
        engine.dispose()


def cmd_db(args, settings: Settings) -> int:
    from datasource.migrate import current_revision, head_revision, upgrade

    with _store(settings) as engine:
        if args.action == "upgrade":
            upgrade(engine)
        print(f"store {engine.url.render_as_string(hide_password=True)}: revision "
              f"{current_revision(engine)} (head {head_revision()})")
    return 0


def cmd_seed(args, settings: Settings) -> int:
    from dashboard.profile import store_demo
    from datasource.demo.seed import clear_store, seed, store_is_empty
    from datasource.migrate import upgrade

    with _store(settings) as engine:
        upgrade(engine)
        if not store_is_empty(engine):
            if args.if_empty:
                print("store already has data; not seeding")
                return 0
            if not args.reset:
                print("the store already has data; add --reset to replace it", file=sys.stderr)
                return 2
            clear_store(engine)
        report = seed(engine, seed=args.seed if args.seed is not None else settings["DEMO_SEED"],
                      now=args.now, total_cases=args.scale, tz=settings["DASHBOARD_TIMEZONE"],
                      events=not args.no_events, progress=print)
        store_demo(engine, settings["DASHBOARD_TIMEZONE"])  # the demo city is one city profile
    print("\n".join(report.lines()))
    return 0


def cmd_simulate(args, settings: Settings) -> int:
    from datasource.demo.simulate import Simulator

    with _store(settings) as engine:
        sim = Simulator(engine, rate=args.rate or settings["SIMULATOR_RATE"],
                        occupancy_seconds=settings["SIMULATOR_OCCUPANCY_SECONDS"],
                        tz=settings["DASHBOARD_TIMEZONE"])
        stop = threading.Event()
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stop.set())
        print("simulator running: " + (f"{sim.rate:g} reports/s" if sim.rate is not None else
                                         "the city's own pace") , flush=True)
        sim.run(stop, max_ticks=args.ticks)
    return 0


def cmd_city(args, settings: Settings) -> int:
    """The city profile: load one into the store, or show the stored one."""
    from dashboard import profile as city

    with _store(settings) as engine:
        if args.action == "load":
            from datasource.migrate import upgrade

            try:
                loaded = city.load_file(Path(args.file))
            except city.ProfileError as exc:
                print(f"city: {exc}", file=sys.stderr)
                return 2
            upgrade(engine)  # the profile's table comes with migration 0010
            city.store(engine, loaded)
            print(f"city profile {args.file} loaded: {loaded.name_zh} / {loaded.name_en}, time zone "
                  f"{loaded.timezone}, records {', '.join(loaded.subjects)}")
            print("restart the app, the poller and the report scheduler so that they use it")
            return 0
        current = city.stored(engine)
    if current is None:
        print(f"no city profile in the store: DASHBOARD_TIMEZONE {settings['DASHBOARD_TIMEZONE']} applies, "
              "and every subject is recorded")
        return 0
    print(f"{current.name_zh} / {current.name_en}\ntitle: {current.title_zh} / {current.title_en}\n"
          f"time zone: {current.timezone}\nlanguage: {current.language or settings['DASHBOARD_LANGUAGE']}\n"
          f"records: {', '.join(current.subjects)}")
    return 0


def cmd_import(args, settings: Settings) -> int:
    from datasource.importer import ImportError_, run_import

    try:
        with _store(settings) as engine:
            result = run_import(engine, [Path(p) for p in args.files], kind=args.kind,
                                mapping=Path(args.mapping) if args.mapping else None, fmt=args.format,
                                rejects=Path(args.rejects) if args.rejects else None,
                                tz=settings["DASHBOARD_TIMEZONE"])
    except ImportError_ as exc:
        print(f"import failed: {exc}", file=sys.stderr)
        return 2
    print("\n".join(result.summary_lines()))
    return 1 if result.rejected else 0


def _read_password(args) -> str:
    from dashboard.accounts import new_password

    if args.generate:
        password = new_password()
        print(f"password (shown once): {password}")
        return password
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    import getpass

    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise SystemExit("the two passwords differ")
    return first


def cmd_users(args, settings: Settings) -> int:
    from dashboard import accounts
    from datasource import users

    try:
        with _store(settings) as engine:
            if args.action == "list":
                for u in users.list_users(engine):
                    print(f"{u['username']:<20} {u['role']:<16} {u['district_code'] or '-':<8} "
                          f"{'active' if u['active'] else 'disabled':<9} last login {u['last_login_at'] or '-'}")
            elif args.action == "add":
                role = args.role or "district_leader"
                users.create_user(engine, args.username,
                                  accounts.hash_password(_read_password(args), args.username), role, args.district)
                print(f"user {args.username} ({role}{' ' + args.district if args.district else ''}) created")
            elif args.action == "password":
                if users.user_by_name(engine, args.username) is None:
                    raise users.AccountError(f"no user {args.username!r}")
                users.update_user(engine, args.username,
                                  password_hash=accounts.hash_password(_read_password(args), args.username))
                print(f"password of {args.username} changed; their sessions have ended")
            elif args.action == "role":
                users.update_user(engine, args.username, role=args.role, district_code=args.district)
                print(f"user {args.username} is now {args.role}{' of ' + args.district if args.district else ''}; "
                      "their sessions have ended")
            else:
                users.update_user(engine, args.username, active=args.action == "enable")
                print(f"user {args.username} {args.action}d"
                      + ("; their sessions have ended" if args.action == "disable" else ""))
    except users.AccountError as exc:
        print(f"users: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_tokens(args, settings: Settings) -> int:
    from dashboard import accounts
    from datasource import users

    try:
        with _store(settings) as engine:
            if args.action == "list":
                for tk in users.list_tokens(engine):
                    state = f"revoked {tk['revoked_at']:%Y-%m-%d %H:%M}" if tk["revoked_at"] else "active"
                    print(f"{tk['id']:>4}  {tk['label']:<30} {tk['district_code'] or 'city':<8} {state}")
            elif args.action == "add":
                token_id, token = accounts.new_display_token(engine, args.label, args.district)
                base = f"http://{settings['DASHBOARD_HOST']}:{settings['DASHBOARD_PORT']}"
                print(f"display token {token_id} ({args.label}); the wall's URL, shown once:\n"
                      f"{base}/wall?token={token}")
            else:
                users.revoke_token(engine, args.id)
                print(f"display token {args.id} revoked: its walls lose access within "
                      f"{settings['AUTH_CACHE_SECONDS']:g} s")
    except users.AccountError as exc:
        print(f"tokens: {exc}", file=sys.stderr)
        return 2
    return 0


def _gunicorn_argv(settings: Settings) -> list[str]:
    """gunicorn's command line, every figure from the settings (docs/deployment.md)."""
    argv = [sys.executable, "-m", "gunicorn", "--no-control-socket",
            "--bind", f"{settings['DASHBOARD_HOST']}:{settings['DASHBOARD_PORT']}",
            "--workers", str(settings["DASHBOARD_WORKERS"]),
            "--threads", str(settings["GUNICORN_THREADS"]),
            "--timeout", str(settings["GUNICORN_TIMEOUT"]),
            "--graceful-timeout", str(settings["GUNICORN_GRACEFUL_TIMEOUT"]),
            "--keep-alive", str(settings["GUNICORN_KEEPALIVE"]),
            # time, level, host and PID on gunicorn's lines too; an access log without tokens
            "--logger-class", "dashboard.logs.GunicornLogger",
            "--log-level", str(settings["LOG_LEVEL"]).lower()]
    if settings["ACCESS_LOG"]:
        argv += ["--access-logfile", "-"]
    return argv + ["--chdir", str(PROJECT_ROOT), "app:server"]


def cmd_serve(args, settings: Settings) -> int:
    from dashboard.auth import check_production

    try:
        check_production(settings)  # the workers would refuse too, one by one, less clearly
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    os.execv(sys.executable, _gunicorn_argv(settings))


def demo_seed_options(settings: Settings) -> dict:
    """How `python -m dashboard demo` seeds an empty store (tests seed small stores alike)."""
    weeks = settings["DEMO_REPORT_WEEKS"]
    return {"seed": settings["DEMO_SEED"], "tz": settings["DASHBOARD_TIMEZONE"],
            "history_days": settings["DEMO_HISTORY_DAYS"],
            # parking for the weeks the demo publishes, and the week the oldest compares with
            "parking_weeks": weeks + 1 if weeks else None}


def _local_url(settings: Settings, path: str) -> str:
    host = settings["DASHBOARD_HOST"]
    host = "127.0.0.1" if host in ("", "0.0.0.0") else "[::1]" if host == "::" else host
    return f"http://{host}:{settings['DASHBOARD_PORT']}{path}"


def when_ready(url: str, start, stopping: threading.Event, timeout: float = 900.0, every: float = 2.0) -> bool:
    """Call `start()` once `url` answers 200 (the app serves, its first snapshot is made), or
    after `timeout` seconds whatever it answers; not at all once `stopping` is set. Returns
    whether it started."""
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while not stopping.is_set():
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    break
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            log.warning("%s did not answer 200 within %.0f s; starting anyway", url, timeout)
            break
        stopping.wait(every)
    if stopping.is_set():
        return False
    start()
    return True


def cmd_demo(args, settings: Settings) -> int:
    """What `make run` does: migrate, seed when empty, start the simulator, serve, and once
    the app answers, the report scheduler publishing the last DEMO_REPORT_WEEKS weeks."""
    from dashboard.profile import store_demo
    from datasource.demo.seed import seed, store_is_empty
    from datasource.migrate import upgrade

    with _store(settings) as engine:
        upgrade(engine)
        if store_is_empty(engine):
            print("seeding the demo city (13 months or more of history; a few minutes)...", flush=True)
            report = seed(engine, **demo_seed_options(settings), progress=lambda m: print(m, flush=True))
            store_demo(engine, settings["DASHBOARD_TIMEZONE"])  # the demo city is one city profile
            print("\n".join(report.lines()), flush=True)
    os.environ.setdefault("DASHBOARD_ENV", "demo")  # the web workers: demo secret, plain-http cookies
    logins = None
    if settings["AUTH_ENABLED"]:
        from dashboard.accounts import demo_accounts

        with _store(settings) as engine:
            logins = demo_accounts(engine, settings.local_cache_dir)
    children, children_lock, stopping = [], threading.Lock(), threading.Event()
    if settings["SIMULATOR_ENABLED"]:
        children.append(subprocess.Popen([sys.executable, "-m", "dashboard", "simulate"],
                                         cwd=PROJECT_ROOT))
    base = f"http://{settings['DASHBOARD_HOST']}:{settings['DASHBOARD_PORT']}"
    print(f"serving {base}/  (the wall: {base}/wall, e.g. {base}/wall?rotate=30 or "
          f"{base}/wall?district=410105&lang=en)", flush=True)
    if logins is not None:
        print("demo logins for this run (new passwords at every start):", flush=True)
        for name, password, sees in logins.logins:
            shown = password or f"(disabled; `python -m dashboard users enable {name}` to use it)"
            print(f"  {name:<8} {shown}   ({sees})", flush=True)
        print(f"a wall without login: {base}/wall?token={logins.wall_token}&rotate=30", flush=True)
    server = subprocess.Popen(_gunicorn_argv(settings), cwd=PROJECT_ROOT)
    children.append(server)

    def _reports():
        # the weekly report scheduler (Monday 08:00 by default; see docs/weekly.md), at a lower
        # CPU priority (its Chromium too): exporting the last weeks never slows a page down
        argv = [sys.executable, "-m", "dashboard", "reports", "--nice", "10"]
        if settings["DEMO_REPORT_WEEKS"]:
            argv += ["--backfill", str(settings["DEMO_REPORT_WEEKS"])]
            print(f"publishing the reports of the last {settings['DEMO_REPORT_WEEKS']} weeks in the background "
                  f"({base}/snapshots)", flush=True)
        with children_lock:
            if not stopping.is_set():
                children.append(subprocess.Popen(argv, cwd=PROJECT_ROOT))

    # started once the app answers with its first snapshot: the first page is not kept waiting
    threading.Thread(target=when_ready, args=(_local_url(settings, "/readyz"), _reports, stopping),
                     name="demo-reports", daemon=True).start()

    def _stop(*_):
        with children_lock:
            stopping.set()
            for child in children:
                if child.poll() is None:
                    child.terminate()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        return server.wait()
    finally:
        _stop()
        with children_lock:
            started = list(children)
        for child in started:
            child.wait(timeout=10)


def cmd_poll(args, settings: Settings) -> int:
    """The single poller in its own process (set POLLER_ENABLED=false in the web processes)."""
    from dashboard.poller import run_forever

    run_forever(settings)
    return 0


def cmd_snapshot(args, settings: Settings) -> int:
    """Export a finished week's reports (see docs/weekly.md). Exit 0: exported or already
    there; 1: refused (recorded on /snapshots); 2: bad --week/--scope; 3: another export runs."""
    from dashboard.weekly.runner import ScopeError, export_week
    from dashboard.weekly.weeks import WeekError

    try:
        result = export_week(settings, args.week, scope=args.scope, force=args.force)
    except (WeekError, ScopeError) as exc:
        print(f"snapshot: {exc}", file=sys.stderr)
        return 2
    if result.status == "ok":
        print(f"{result.week}: exported {', '.join(result.scopes)} in {result.seconds:.1f} s into "
              f"{settings.reports_dir / result.week}")
        if result.kept:
            print(f"earlier versions kept in {', '.join(result.kept)}")
        return 0
    if result.status == "exists":
        print(f"{result.week}: already exported ({', '.join(result.skipped)}); add --force to replace it "
              "(the earlier version is kept under versions/)")
        return 0
    if result.status == "busy":
        print(f"{result.week}: not started, {result.error}", file=sys.stderr)
        return 3
    print(f"{result.week}: refused, nothing published: {result.error}", file=sys.stderr)
    return 1


def cmd_reports(args, settings: Settings) -> int:
    """The report scheduler in its own process (one is elected among all that run)."""
    from dashboard.weekly.schedule import run_forever

    if args.nice:
        os.nice(args.nice)  # inherited by the exports' Chromium and wall processes
    run_forever(settings, backfill_weeks=args.backfill)
    return 0


def cmd_prune(args, settings: Settings) -> int:
    """Remove what is beyond retention (docs/retention.md) and print what went."""
    from dashboard.cache import Cache
    from dashboard.retention import prune

    with _store(settings) as engine:
        report = prune(settings, engine, now=args.now, cache=Cache.from_settings(settings))
    print("\n".join(report.lines(settings.tz)))
    return 0


def cmd_settings_doc(args, settings: Settings) -> int:
    sys.stdout.write(settings_markdown())
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dashboard", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="create or migrate the store's schema")
    db.add_argument("action", choices=["upgrade", "current"])
    db.set_defaults(func=cmd_db)

    s = sub.add_parser("seed", help="fill the store with the demo city")
    s.add_argument("--scale", type=_scale, help="total cases: 100k, 1M, 10M or a number "
                   "(default: the demo city's realistic yearly volume)")
    s.add_argument("--seed", type=int, help="random seed (default: DEMO_SEED)")
    s.add_argument("--now", type=_when, help="the moment the history ends (ISO time with zone; default: now)")
    s.add_argument("--reset", action="store_true", help="empty a store that already has data first")
    s.add_argument("--if-empty", action="store_true", help="do nothing when the store has data")
    s.add_argument("--no-events", action="store_true", help="skip case events (faster, for benchmarks)")
    s.set_defaults(func=cmd_seed)

    sim = sub.add_parser("simulate", help="move the demo city forward in real time")
    sim.add_argument("--rate", type=float, help="reports per second (default: SIMULATOR_RATE)")
    sim.add_argument("--ticks", type=int, help="stop after this many one-second ticks")
    sim.set_defaults(func=cmd_simulate)

    imp = sub.add_parser("import", help="load a city's own exports (see docs/import.md)")
    imp.add_argument("files", nargs="+")
    imp.add_argument("--kind", required=True, help="what the files hold: districts, boundaries, streets, "
                     "grids, categories, departments, sources (reference data), cases, facilities, occupancy, "
                     "enterprises, visits or problems")
    imp.add_argument("--mapping", help="YAML or JSON mapping of the files' columns and values")
    imp.add_argument("--format", help="csv, jsonl, json, open311 or geojson (default: from the file name)")
    imp.add_argument("--rejects", help="where to write rejected rows (default: beside the first file)")
    imp.set_defaults(func=cmd_import)

    ci = sub.add_parser("city", help="the city profile: its name, time zone and recorded subjects "
                        "(docs/onboarding.md)")
    ci.add_argument("action", choices=["load", "show"])
    ci.add_argument("file", nargs="?", help="load: the profile (YAML)")
    ci.set_defaults(func=cmd_city)

    us = sub.add_parser("users", help="people who log in: add, list, disable, enable, password, role "
                        "(every change but enable ends the user's sessions)")
    us.add_argument("action", choices=["add", "list", "disable", "enable", "password", "role"])
    us.add_argument("username", nargs="?")
    us.add_argument("--role", choices=["admin", "city_leader", "district_leader"],
                    help="add: the new user's role (default district_leader); role: the new role")
    us.add_argument("--district", help="the district code of a district leader")
    us.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    us.add_argument("--generate", action="store_true", help="make a random password and print it once")
    us.set_defaults(func=cmd_users)

    tk = sub.add_parser("tokens", help="walls' display tokens: add, list, revoke")
    tk.add_argument("action", choices=["add", "list", "revoke"])
    tk.add_argument("--label", help="where the wall is, e.g. 'city centre, wall 2'")
    tk.add_argument("--district", help="a district's own wall (default: the city)")
    tk.add_argument("--id", type=int, help="the token to revoke (see `tokens list`)")
    tk.set_defaults(func=cmd_tokens)

    sub.add_parser("serve", help="serve the app with gunicorn").set_defaults(func=cmd_serve)
    sub.add_parser("poll", help="run the poller as its own process (then set POLLER_ENABLED=false "
                   "for the web processes)").set_defaults(func=cmd_poll)
    snap = sub.add_parser("snapshot", help="export a finished ISO week's reports (HTML, PDF, PNG, XLSX, "
                          "manifest) into REPORTS_DIR")
    snap.add_argument("--week", required=True, help="ISO week in the city's time zone (the city profile's, "
                      "else DASHBOARD_TIMEZONE), e.g. 2026-W47")
    snap.add_argument("--scope", default="all", help="all (the city and every district), city or a "
                      "district code (default: all)")
    snap.add_argument("--force", action="store_true", help="replace an exported week (the earlier "
                      "version is kept under versions/)")
    snap.set_defaults(func=cmd_snapshot)
    rep = sub.add_parser("reports", help="run the weekly report scheduler (REPORT_CRON) as its own process")
    rep.add_argument("--backfill", type=int, default=0, metavar="N",
                     help="also publish the last N finished weeks missing from the archive, once elected")
    rep.add_argument("--nice", type=int, default=0, metavar="N",
                     help="run at this much lower CPU priority (os.nice), exports included")
    rep.set_defaults(func=cmd_reports)
    pr = sub.add_parser("prune", help="remove what is beyond retention: fold old occupancy readings "
                        "hourly, drop KPI state no period reads, old cases (CASE_RETENTION_DAYS) and "
                        "surplus report versions (docs/retention.md)")
    pr.add_argument("--now", type=_when, help="prune as at this time (ISO time with zone; default: now)")
    pr.set_defaults(func=cmd_prune)
    sub.add_parser("demo", help="migrate, seed when empty, simulate and serve (make run)") \
        .set_defaults(func=cmd_demo)
    sub.add_parser("settings-doc", help="print docs/settings.md").set_defaults(func=cmd_settings_doc)
    return p


def _check_args(parser, args) -> None:
    if args.command == "users" and args.action != "list" and not args.username:
        parser.error(f"users {args.action} needs a user name")
    if args.command == "users" and args.action == "role" and not args.role:
        parser.error("users role needs --role (and --district for a district leader)")
    if args.command == "city" and args.action == "load" and not args.file:
        parser.error("city load needs the profile's file")
    if args.command == "tokens" and args.action == "add" and not args.label:
        parser.error("tokens add needs --label")
    if args.command == "tokens" and args.action == "revoke" and args.id is None:
        parser.error("tokens revoke needs --id")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_args(parser, args)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    from dashboard.logs import configure as configure_logging

    configure_logging(settings)
    if args.command in CITY_COMMANDS:
        from dashboard.profile import with_profile

        settings = with_profile(settings)  # the city profile's zone, title and language win
    return args.func(args, settings) or 0
