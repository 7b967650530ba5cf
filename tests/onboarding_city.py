"""A city that is not Zhengzhou, for docs/onboarding.md and tests/test_onboarding.py:
"Riverton", a US city with a typical 311 export (America/Chicago, statuses Open /
Pending / Referred / Closed, origins Phone / App / Email, no streets, council districts
"District 1".."District 5") and a boundary file of its own name.

    python -m tests.onboarding_city FOLDER   # writes the two generated files there

The export is generated (seeded) over the three weeks before `now`, so that a wall opened
now and the report of the last finished week both have data.
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import random
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

CHICAGO = ZoneInfo("America/Chicago")
TIME_FORMAT = "%m/%d/%Y %I:%M:%S %p"  # 11/16/2026 08:15:00 AM, as the export writes it
ROWS = 600
DAYS = 21
BOUNDARIES = "riverton_council_districts_2023.geojson"
EXPORT = "service_requests.csv"
HEADER = ["SR_NUMBER", "SR_TYPE", "STATUS", "ORIGIN", "CREATED_DATE", "LAST_MODIFIED_DATE", "CLOSED_DATE",
          "STREET_ADDRESS", "COUNCIL_DISTRICT", "LATITUDE", "LONGITUDE"]
TYPES = {"Pothole in Street": 0.3, "Graffiti Removal": 0.2, "Street Light Out": 0.2, "Missed Trash Pickup": 0.2,
         "Abandoned Vehicle": 0.1}
ORIGINS = {"Phone": 0.5, "App": 0.35, "Email": 0.15}
OPEN_STATUSES = ("Open", "Pending", "Referred")
WEST, SOUTH, WIDTH, HEIGHT = -89.70, 40.60, 0.04, 0.08  # five districts side by side


def district_square(k: int) -> list[list[float]]:
    x = round(WEST + (k - 1) * WIDTH, 4)
    return [[x, SOUTH], [round(x + WIDTH, 4), SOUTH], [round(x + WIDTH, 4), SOUTH + HEIGHT],
            [x, SOUTH + HEIGHT], [x, SOUTH]]


def write_boundaries(folder: Path) -> Path:
    """The city's GIS export: one feature per council district, named in DISTRICT."""
    features = [{"type": "Feature", "properties": {"OBJECTID": k, "DISTRICT": f"District {k}", "WARD_COUNT": 2},
                 "geometry": {"type": "Polygon", "coordinates": [district_square(k)]}} for k in range(1, 6)]
    path = folder / BOUNDARIES
    # as docs/onboarding.md shows it: one feature per line
    path.write_text('{"type": "FeatureCollection", "name": "council_districts_2023", "features": [\n'
                    + ",\n".join("  " + json.dumps(f) for f in features) + "\n]}\n", encoding="utf-8")
    return path


def local(t: dt.datetime) -> str:
    return t.astimezone(CHICAGO).strftime(TIME_FORMAT)


def unambiguous(t: dt.datetime) -> dt.datetime:
    """`t`, or later, so that its local time is not in the hour clocks repeat in autumn
    (a naive local time there could be either instant)."""
    while True:
        naive = t.astimezone(CHICAGO).replace(tzinfo=None)
        if naive.replace(tzinfo=CHICAGO, fold=0).utcoffset() == naive.replace(tzinfo=CHICAGO, fold=1).utcoffset():
            return t
        t += dt.timedelta(hours=1)


def generate(now: dt.datetime, seed: int = 311) -> list[dict]:
    """The export's rows: requests created over the DAYS before `now`, the older ones mostly
    closed, a few referred to another agency, some pending with a department."""
    rng = random.Random(seed)
    now = now.astimezone(dt.timezone.utc).replace(microsecond=0)
    out = []
    for i in range(1, ROWS + 1):
        created = unambiguous(now - dt.timedelta(seconds=rng.randint(2 * 3600, DAYS * 86400)))
        age_days = (now - created).total_seconds() / 86400
        r = rng.random()
        if r < min(0.9, 0.25 + age_days / 8):
            status = "Closed"
        elif r < 0.96:
            status = rng.choice(["Open", "Pending"])
        else:
            status = "Referred"
        closed = modified = None
        if status == "Closed":
            closed = unambiguous(min(created + dt.timedelta(seconds=rng.randint(1800, 5 * 86400)),
                                     now - dt.timedelta(minutes=5)))
            modified = closed
        elif status != "Open":
            modified = unambiguous(min(created + dt.timedelta(seconds=rng.randint(600, 2 * 86400)),
                                       now - dt.timedelta(minutes=5)))
        k = rng.randint(1, 5)
        (x0, y0), (x1, _), (_, y2) = district_square(k)[:3]
        out.append({
            "SR_NUMBER": f"SR{now.year % 100:02d}-{i:07d}",
            "SR_TYPE": rng.choices(list(TYPES), list(TYPES.values()))[0],
            "STATUS": status,
            "ORIGIN": rng.choices(list(ORIGINS), list(ORIGINS.values()))[0],
            "CREATED_DATE": local(created),
            "LAST_MODIFIED_DATE": local(modified) if modified else "",
            "CLOSED_DATE": local(closed) if closed else "",
            "STREET_ADDRESS": f"{rng.randint(1, 99) * 100} {rng.choice('NSEW')} "
                              f"{rng.choice(['MAIN', 'OAK', 'ELM', 'LAKE', 'MILL'])} ST",
            "COUNCIL_DISTRICT": f"District {k}",
            "LATITUDE": f"{rng.uniform(y0, y2):.6f}",
            "LONGITUDE": f"{rng.uniform(x0, x1):.6f}",
        })
    return out


def write_export(folder: Path, rows: list[dict]) -> Path:
    path = folder / EXPORT
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=HEADER)
        writer.writeheader()
        writer.writerows(rows)
    return path


def parse_local(text: str) -> dt.datetime:
    """A time of the export as the documented import reads it: naive, in the city's zone."""
    return dt.datetime.strptime(text, TIME_FORMAT).replace(tzinfo=CHICAGO)


if __name__ == "__main__":
    target = Path(sys.argv[1])
    write_boundaries(target)
    write_export(target, generate(dt.datetime.now(dt.timezone.utc)))
