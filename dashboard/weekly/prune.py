"""Earlier report versions beyond REPORT_VERSIONS_KEPT (docs/retention.md).

`snapshot --force` moves the published report of a week and scope to
`<week>/versions/<scope>-<UTC stamp of its generation>[-xxxx]` (archive.py). The newest
`keep` of them per week and scope stay; the published report itself is never touched.
"""
from __future__ import annotations

import re
import shutil
from collections import defaultdict

from dashboard.weekly.archive import Archive

VERSION_RE = re.compile(r"^(?P<scope>city|[0-9A-Za-z]{1,12})-(?P<stamp>\d{8}T\d{6}Z)(?P<tail>(-[0-9a-f]{4})*)$")


def surplus_versions(archive: Archive, keep: int) -> list[tuple[str, str]]:
    """(week, folder name) of each version beyond the newest `keep` of its week and scope."""
    out = []
    for week in archive.weeks():
        folder = archive.root / week / "versions"
        if not folder.is_dir():
            continue
        by_scope: dict[str, list] = defaultdict(list)
        for entry in folder.iterdir():
            m = VERSION_RE.match(entry.name)
            if m and entry.is_dir() and not entry.is_symlink():
                # a name taken twice in one second gets a suffix, after the first: same order
                by_scope[m["scope"]].append((m["stamp"], len(m["tail"]), entry.name))
        for versions in by_scope.values():
            versions.sort()
            out += [(week, name) for _, _, name in versions[:max(0, len(versions) - keep)]]
    return out


def prune_versions(archive: Archive, keep: int) -> list[str]:
    """Delete the surplus versions; returns them as `<week>/versions/<name>`."""
    removed = []
    for week, name in surplus_versions(archive, keep):
        shutil.rmtree(archive.root / week / "versions" / name)
        removed.append(f"{week}/versions/{name}")
    return removed
