"""Log lines that say where they come from, and an access log that keeps no secrets.

Every line carries its time (ISO 8601 with the UTC offset), level, host, PID, logger
and message, as text or one JSON object per line (`LOG_FORMAT`): with several hosts,
each with several workers, a line that names neither cannot be traced to its process.

`GunicornLogger` (gunicorn's `--logger-class`, set by `python -m dashboard serve`) gives
gunicorn's own lines the same shape and writes the access log: client, request, status,
bytes and the request's time. Query strings and referrers are logged with every
`token=` value replaced: a wall's URL carries its display token (`/wall?token=...`),
and its callbacks send that URL as their Referer.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import re
import socket

from gunicorn.glogging import Logger as _GunicornBase

HOST = socket.gethostname()
REDACTED = "[redacted]"
# token=..., and any other *token / password / secret parameter someone adds later
_SECRET_PARAM = re.compile(r"(?i)\b([a-z_]*(?:token|password|secret)=)[^&#\s\"']*")


def redact(text: str) -> str:
    """`text` with the value of every token=, password= or secret= parameter hidden."""
    return _SECRET_PARAM.sub(lambda m: m.group(1) + REDACTED, text) if text else text


class LineFormatter(logging.Formatter):
    """time level host [pid] logger: message (text), or the same fields as JSON."""

    def __init__(self, style: str = "text"):
        if style not in ("text", "json"):
            raise ValueError(f"LOG_FORMAT: expected text or json, got {style!r}")
        super().__init__()
        self.style_name = style

    def formatTime(self, record, datefmt=None) -> str:  # noqa: N802 (logging's name)
        return dt.datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds")

    def format(self, record: logging.LogRecord) -> str:
        message = redact(record.getMessage())
        error = self.formatException(record.exc_info) if record.exc_info else None
        if self.style_name == "json":
            line = {"ts": self.formatTime(record), "level": record.levelname, "host": HOST,
                    "pid": record.process, "logger": record.name, "msg": message}
            line.update(getattr(record, "access", None) or {})
            if error:
                line["exc"] = error
            return json.dumps(line, ensure_ascii=False, default=str)
        text = f"{self.formatTime(record)} {record.levelname} {HOST} [{record.process}] {record.name}: {message}"
        return f"{text}\n{error}" if error else text


def configure(settings) -> None:
    """The process's log handler (the CLI, the app factory). Like logging.basicConfig it
    leaves logging alone when someone else configured it (a test runner, an embedding app);
    unlike it, it re-applies the settings to the handler it installed earlier."""
    root = logging.getLogger()
    mine = [h for h in root.handlers if getattr(h, "_command_centre", False)]
    if not mine:
        if root.handlers:
            return
        handler = logging.StreamHandler()
        handler._command_centre = True
        root.addHandler(handler)
        mine = [handler]
    for handler in mine:
        handler.setFormatter(LineFormatter(settings["LOG_FORMAT"]))
    root.setLevel(settings["LOG_LEVEL"])


def _log_format_from_env() -> str:
    from dashboard.settings import Settings, SettingsError

    try:
        return Settings.from_env()["LOG_FORMAT"]
    except SettingsError:
        return "text"  # the app itself refuses to start and says why


class GunicornLogger(_GunicornBase):
    """gunicorn's logger with the app's line format and a redacting access log."""

    def setup(self, cfg):
        super().setup(cfg)
        formatter = LineFormatter(_log_format_from_env())
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                if getattr(handler, "_gunicorn", False):
                    handler.setFormatter(formatter)

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        try:
            atoms = self.atoms(resp, req, environ, request_time)
            self.access_log.info(*access_line(atoms), extra={"access": access_fields(atoms)})
        except Exception:
            self.exception("access log line failed")


def access_fields(atoms: dict) -> dict:
    """One request, as fields (the JSON access line). Ours, not gunicorn's format string:
    the values are redacted, and no header, cookie or Authorization is ever logged."""
    query = atoms.get("q") or ""
    return {"client": atoms.get("h") or "-", "method": atoms.get("m") or "-",
            "path": redact(atoms.get("U") or "") + (f"?{redact(query)}" if query else ""),
            "status": str(atoms.get("s")), "bytes": atoms.get("B") or 0,
            "seconds": float(atoms.get("L") or 0), "referer": redact(atoms.get("f") or "-"),
            "agent": atoms.get("a") or "-"}


def access_line(atoms: dict) -> tuple:
    """The text access message (the formatter adds time, level, host and PID)."""
    f = access_fields(atoms)
    return ('%s "%s %s" %s %s %.6fs "%s" "%s"', f["client"], f["method"], f["path"], f["status"],
            f["bytes"], f["seconds"], f["referer"], f["agent"])

