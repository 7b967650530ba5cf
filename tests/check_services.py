"""Before the tests: do PostgreSQL and Redis answer? Fail fast with the URL, never hang."""
from __future__ import annotations

import os
import sys

PG = os.environ.get("TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def main() -> int:
    import psycopg
    import redis

    failures = []
    try:
        with psycopg.connect(PG.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # any failure is reported, whatever its type
        failures.append(f"PostgreSQL at {PG} does not answer: {exc}".strip())
    try:
        redis.Redis.from_url(REDIS, socket_timeout=5, socket_connect_timeout=5).ping()
    except Exception as exc:
        failures.append(f"Redis at {REDIS} does not answer: {exc}")
    for f in failures:
        print(f"ERROR: {f}", file=sys.stderr)
    if failures:
        print("The tests need both services (see README.md, 'Requirements'). "
              "Set TEST_PG_URL / TEST_REDIS_URL to point elsewhere.", file=sys.stderr)
        return 1
    print(f"services ok: {PG} and {REDIS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
