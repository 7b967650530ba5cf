"""`python -m dashboard.weekly.wallserve CONFIG`: the child process of wallshot.wall_process.

Builds a wall app from the settings in CONFIG (JSON: settings, snapshot), publishes the
snapshot to its cache, serves it on a free loopback port, prints `WALL-READY <url>` and
serves until its stdin closes (the exporter is done, or died). Nothing imports this
module: it is the one place of the weekly export that uses the app factory.
"""
from __future__ import annotations

import json
import sys
import threading
from pathlib import Path


def main(argv: list[str]) -> int:
    from werkzeug.serving import WSGIRequestHandler, make_server

    from dashboard.factory import create_app
    from dashboard.services import EXTENSION
    from dashboard.settings import Settings
    from dashboard.snapshot import Snapshot
    from dashboard.weekly.wallshot import READY

    class Quiet(WSGIRequestHandler):
        def log_request(self, *args, **kwargs):  # a few hundred requests per export
            pass

    config = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in config["settings"].items()}
    app = create_app(Settings.from_env(values))
    svc = app.server.extensions[EXTENSION]
    svc.cache.publish(Snapshot.from_json(config["snapshot"]))
    # Dash sets itself up at its first request and marks that done before finishing: the
    # browser's parallel first requests would otherwise meet a half-built callback list
    warm = app.server.test_client().get("/wall")
    if warm.status_code != 200:
        raise RuntimeError(f"the wall app answered /wall with {warm.status_code}")
    server = make_server("127.0.0.1", 0, app.server, threaded=True, request_handler=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="weekly-wall")
    thread.start()
    try:
        print(f"{READY}http://127.0.0.1:{server.server_port}", flush=True)
        sys.stdin.read()  # until the exporter closes the pipe
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        svc.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
