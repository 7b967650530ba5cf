"""The wall as of a week's end: the live wall (`/wall`, unchanged) served by an app of its
own whose cache holds a snapshot made of the week-end computations."""
from __future__ import annotations

import datetime as dt
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

from dashboard.settings import SETTINGS, Settings
from dashboard.snapshot import Section, Snapshot, is_empty


def week_snapshot(sections: dict, data_as_of: dt.datetime) -> Snapshot:
    """Every section fresh; computed now (so that the wall does not call it stale), data as
    of the week's end (shown in the wall's header)."""
    return Snapshot(computed_at=dt.datetime.now(data_as_of.tzinfo), data_as_of=data_as_of,
                    sections={name: Section("empty" if is_empty(d) else "fresh", d) for name, d in sections.items()})


@contextmanager
def serve_wall(settings: Settings, snapshot: Snapshot):
    """Yield the base URL of a wall app on a free loopback port showing `snapshot`: no
    poller, no Redis, a cache folder of its own (thrown away afterwards)."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_request(self, *args, **kwargs):  # a few hundred requests per export
            pass

    from dashboard.factory import create_app
    from dashboard.services import EXTENSION

    with tempfile.TemporaryDirectory(prefix="cc-wall-") as folder:
        overrides = {"POLLER_ENABLED": False, "REDIS_URL": "", "LOCAL_CACHE_DIR": str(Path(folder)),
                     "WALL_RELOAD_AT": "",
                     # only our own browser on the loopback reads it (where logins exist)
                     "AUTH_ENABLED": False}
        known = {s.name for s in SETTINGS}
        app = create_app(Settings.from_env({**settings.values,
                                            **{k: v for k, v in overrides.items() if k in known}}))
        svc = app.server.extensions[EXTENSION]
        svc.cache.publish(snapshot)
        server = make_server("127.0.0.1", 0, app.server, threaded=True, request_handler=Quiet)
        thread = threading.Thread(target=server.serve_forever, daemon=True, name="weekly-wall")
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}"
        finally:
            server.shutdown()
            thread.join(timeout=10)
            server.server_close()
            svc.engine.dispose()
