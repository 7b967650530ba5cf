#!/bin/sh
# deploy/backup.sh DEST: one consistent copy of what the command centre cannot recompute,
# in DEST/command-centre-<UTC time>/:
#   store.dump       PostgreSQL: pg_dump --format=custom (restore with pg_restore), or
#   store.db         SQLite: sqlite3's online .backup (a consistent copy while it is written)
#   reports.tar.gz   REPORTS_DIR: the published weekly reports and their run records
#   settings.env     the settings file (ENV_FILE), with SECRET_KEY: keep the backup private
#   SHA256SUMS
# The snapshot cache (Redis, LOCAL_CACHE_DIR) is not backed up: the poller recomputes it.
# Settings come from the environment, or from ENV_FILE (default
# /etc/command-centre/command-centre.env) when that file exists. Restore: docs/deployment.md.
set -eu

dest=${1:?usage: deploy/backup.sh DEST_DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
env_file=${ENV_FILE:-/etc/command-centre/command-centre.env}
if [ -f "$env_file" ]; then
    set -a
    # shellcheck disable=SC1090
    . "$env_file"
    set +a
fi
database_url=${DATABASE_URL:-sqlite:///var/dashboard.db}
reports_dir=${REPORTS_DIR:-var/reports}
case "$reports_dir" in /*) ;; *) reports_dir="$root/$reports_dir" ;; esac

umask 077
out="$dest/command-centre-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"

case "$database_url" in
    postgresql*)
        # libpq does not know SQLAlchemy's driver suffix (postgresql+psycopg://)
        pg_url="postgresql://${database_url#*://}"
        pg_dump --format=custom --no-owner --file="$out/store.dump" "$pg_url"
        ;;
    sqlite:///*)
        path=${database_url#sqlite:///}
        case "$path" in /*) ;; *) path="$root/$path" ;; esac
        [ -f "$path" ] || { echo "backup: no SQLite store at $path" >&2; exit 1; }
        sqlite3 "$path" ".timeout 10000" ".backup '$out/store.db'"
        ;;
    *)
        echo "backup: cannot back up DATABASE_URL=${database_url%%:*}:..." >&2
        exit 1
        ;;
esac

if [ -d "$reports_dir" ]; then
    # .tmp: exports in progress; weekly.lock: a lock; jobs.sqlite: remade at the scheduler's start
    tar -C "$reports_dir" --exclude=./.tmp --exclude=./weekly.lock --exclude=./jobs.sqlite \
        -czf "$out/reports.tar.gz" .
fi
if [ -f "$env_file" ]; then
    cp "$env_file" "$out/settings.env"
fi
(cd "$out" && sha256sum -- * > SHA256SUMS)
echo "$out"
