"""The demo city's static parts: grids (exclusive ones included), enterprises, parking facilities.

Everything is drawn from a seeded generator so the same seed gives the same city.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd

from datasource.geo import sample_points

PROFILE = Path(__file__).resolve().parent.parent / "data" / "demo_city.json"

COMMUNITY_WORDS = list("阳光幸福和平建设文化绿城金桂锦华祥和康宁兴隆翠竹玉兰育才安居永安紫荆春华")
ENTERPRISE_PREFIX = ["郑州", "河南", "中原", "豫", "黄河", "嵩山", "商都", "绿城", "天地", "华夏"]
ENTERPRISE_CORE = ["华盛", "智远", "鼎信", "恒通", "瑞丰", "新源", "博创", "宏达", "中科", "云图",
                   "汇能", "安泰", "启明", "立信", "正和", "德润", "众诚", "远航", "金桥", "鑫隆"]
INDUSTRIES = [("科技有限公司", "IT"), ("电子科技有限公司", "electronics"), ("食品有限公司", "food"),
              ("物流有限公司", "logistics"), ("建设工程有限公司", "construction"),
              ("商贸有限公司", "trade"), ("餐饮管理有限公司", "catering"),
              ("生物医药有限公司", "pharma"), ("新材料有限公司", "materials"), ("个体工商户", "self-employed")]
EXCLUSIVE_HOSTS = [("university", "大学"), ("university", "职业技术学院"), ("market", "批发市场"),
                   ("market", "农贸市场"), ("market", "商业综合体"), ("enterprise", "产业园"),
                   ("enterprise", "集团"), ("enterprise", "智能制造基地")]


def load_profile(path: Path = PROFILE) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def build_grids(rng: np.random.Generator, districts: list, streets: pd.DataFrame) -> pd.DataFrame:
    """Level-1 community grids per street, level-2 grids under them, and exclusive grids."""
    rows = []
    gid = 0
    for d in districts:
        dstreets = streets[streets.district_code == d.code]
        centres = sample_points(rng, len(dstreets), d.geometry, (d.center_lon, d.center_lat))
        for (_, s), (slon, slat) in zip(dstreets.iterrows(), centres):
            street_short = s.name_zh.removesuffix("街道")
            for i in range(int(rng.integers(3, 7))):
                gid += 1
                parent = gid
                community = "".join(rng.choice(COMMUNITY_WORDS, 2)) + "社区"
                l1lon, l1lat = slon + rng.normal(0, 0.006), slat + rng.normal(0, 0.005)
                rows.append(dict(id=gid, code=f"{s.code}-{i + 1:02d}", district_code=d.code,
                                 street_id=s.id, parent_id=None, level=1, kind="ordinary",
                                 host_unit=None, host_kind=None,
                                 name_zh=f"{street_short}{community}一级网格",
                                 center_lon=l1lon, center_lat=l1lat))
                for j in range(int(rng.integers(2, 5))):
                    gid += 1
                    rows.append(dict(id=gid, code=f"{s.code}-{i + 1:02d}-{j + 1:02d}",
                                     district_code=d.code, street_id=s.id, parent_id=parent, level=2,
                                     kind="ordinary", host_unit=None, host_kind=None,
                                     name_zh=f"{community}第{j + 1}网格",
                                     center_lon=l1lon + rng.normal(0, 0.002),
                                     center_lat=l1lat + rng.normal(0, 0.002)))
        # exclusive grids (专属网格): one per independent unit
        for k in range(int(rng.integers(6, 12))):
            gid += 1
            s = dstreets.iloc[int(rng.integers(len(dstreets)))]
            host_kind, suffix = EXCLUSIVE_HOSTS[int(rng.integers(len(EXCLUSIVE_HOSTS)))]
            host = f"{d.short_zh}{rng.choice(ENTERPRISE_CORE)}{suffix}"
            lon, lat = sample_points(rng, 1, d.geometry, (d.center_lon, d.center_lat))[0]
            rows.append(dict(id=gid, code=f"{s.code}-X{k + 1:02d}", district_code=d.code,
                             street_id=s.id, parent_id=None, level=1, kind="exclusive",
                             host_unit=host, host_kind=host_kind, name_zh=f"{host}专属网格",
                             center_lon=lon, center_lat=lat))
    return pd.DataFrame(rows)


def build_enterprises(rng: np.random.Generator, profile: dict, grids: pd.DataFrame) -> pd.DataFrame:
    frames = []
    next_id = 1
    for code, p in profile["districts"].items():
        n = int(p["enterprises"])
        dgrids = grids[(grids.district_code == code)]
        ordinary = dgrids[dgrids.kind == "ordinary"].id.to_numpy()
        exclusive = dgrids[dgrids.kind == "exclusive"].id.to_numpy()
        industry = rng.integers(len(INDUSTRIES), size=n)
        names = [f"{rng.choice(ENTERPRISE_PREFIX)}{rng.choice(ENTERPRISE_CORE)}"
                 f"{rng.choice(ENTERPRISE_CORE)}{INDUSTRIES[i][0]}" for i in industry]
        in_exclusive = rng.random(n) < 0.35
        excl = np.where(in_exclusive, rng.choice(exclusive, n), 0)
        ids = np.arange(next_id, next_id + n)
        next_id += n
        frames.append(pd.DataFrame({
            "id": ids,
            "external_id": [f"E{code}{i:06d}" for i in ids],
            "name": names,
            "district_code": code,
            "grid_id": rng.choice(ordinary, n),
            "exclusive_grid_id": pd.array(np.where(excl > 0, excl, 0), dtype="Int64"),
            "above_scale": rng.random(n) < 0.08,
            "industry": [INDUSTRIES[i][1] for i in industry],
        }))
    out = pd.concat(frames, ignore_index=True)
    out.loc[out.exclusive_grid_id == 0, "exclusive_grid_id"] = pd.NA
    return out


FACILITY_KINDS = np.array(["on_street", "off_street", "shared", "non_motor"])
KIND_SHARE = [0.34, 0.41, 0.15, 0.10]
CAPACITY = {"on_street": (15, 120), "off_street": (80, 900), "shared": (30, 300), "non_motor": (40, 400)}
KIND_ZH = {"on_street": "路内停车", "off_street": "停车场", "shared": "共享停车场", "non_motor": "非机动车停放点"}


def build_facilities(rng: np.random.Generator, profile: dict, districts: list,
                     streets: pd.DataFrame, now: dt.datetime) -> pd.DataFrame:
    rows = []
    fid = 0
    year_start = dt.date(now.year, 1, 1)
    for d in districts:
        p = profile["districts"][d.code]
        dstreets = streets[streets.district_code == d.code].name_zh.to_numpy()
        n = int(p["facilities"])
        pts = sample_points(rng, n, d.geometry, (d.center_lon, d.center_lat))
        for k in range(n):
            fid += 1
            kind = str(rng.choice(FACILITY_KINDS, p=KIND_SHARE))
            lo, hi = CAPACITY[kind]
            cap = int(rng.integers(lo, hi))
            roll = rng.random()
            programme = None
            since = dt.date(int(rng.integers(2012, now.year)), int(rng.integers(1, 13)), 1)
            if kind == "shared" or roll < 0.10:
                programme = "shared" if kind == "shared" else str(rng.choice(["added", "revitalised"]))
            if programme and rng.random() < 0.55:  # much of the programme happened this year
                since = year_start + dt.timedelta(days=int(rng.integers(0, max(1, (now.date() - year_start).days))))
            street = str(rng.choice(dstreets)).removesuffix("街道")
            rows.append(dict(id=fid, external_id=f"P{d.code}{k + 1:05d}",
                             name=f"{street}{KIND_ZH[kind]}{k + 1:03d}", district_code=d.code,
                             kind=kind, capacity=cap, programme=programme, demo_site=False,
                             since=since, lon=float(pts[k, 0]), lat=float(pts[k, 1])))
    df = pd.DataFrame(rows)
    eligible = df.index[(df.kind.isin(["off_street", "shared"]))].to_numpy()
    demo = rng.choice(eligible, size=min(profile["demo_sites"], len(eligible)), replace=False)
    df.loc[demo, "demo_site"] = True
    df.loc[demo, "programme"] = df.loc[demo, "programme"].fillna("added")
    return df


def occupancy_curve(kind: np.ndarray, hour: np.ndarray, weekday: np.ndarray) -> np.ndarray:
    """Expected share occupied by facility kind and local hour (0-24, fractional)."""
    day = np.exp(-((hour - 11.0) ** 2) / 18) * 0.55 + np.exp(-((hour - 16.5) ** 2) / 10) * 0.35
    night = np.exp(-((np.minimum(hour, 24 - hour) - 1.0) ** 2) / 30) * 0.8
    weekend = weekday >= 5
    share = np.where(kind == "off_street", 0.25 + 0.65 * np.maximum(night, day * 0.7),
            np.where(kind == "shared", 0.15 + 0.7 * np.where(weekend, day * 0.6, day),
            np.where(kind == "on_street", 0.10 + 0.85 * np.where(weekend, day * 1.05, day),
                     0.10 + 0.6 * day)))
    return np.clip(share, 0.02, 0.98)


def build_readings(rng: np.random.Generator, facilities: pd.DataFrame, now: dt.datetime,
                   tz, days: int, step_minutes: int) -> pd.DataFrame:
    """Half-hourly readings for the last `days` days, with gaps (2 % missing)."""
    step = dt.timedelta(minutes=step_minutes)
    end = now.replace(second=0, microsecond=0)
    end -= dt.timedelta(minutes=end.minute % step_minutes)
    times = pd.date_range(end=end, periods=int(days * 24 * 60 / step_minutes), freq=step)
    local = times.tz_convert(tz)
    hour = (local.hour + local.minute / 60).to_numpy()
    weekday = local.day_of_week.to_numpy()
    nf, nt = len(facilities), len(times)
    kind = np.repeat(facilities.kind.to_numpy(), nt)
    cap = np.repeat(facilities.capacity.to_numpy(), nt)
    share = occupancy_curve(kind, np.tile(hour, nf), np.tile(weekday, nf))
    share = np.clip(share + rng.normal(0, 0.05, share.shape), 0, 1)
    occupied = np.rint(share * cap).astype(np.int64)
    observed = np.tile(times.tz_convert("UTC").tz_localize(None).to_numpy(), nf)
    keep = rng.random(len(occupied)) >= 0.02
    # readings usually arrive within a minute; some are late
    delay = rng.exponential(40, len(occupied))
    delay[rng.random(len(delay)) < 0.01] += rng.uniform(600, 7200)
    df = pd.DataFrame({
        "facility_id": np.repeat(facilities.id.to_numpy(), nt),
        "observed_at": observed,
        "occupied": occupied,
        "received_at": observed + (delay * 1e6).astype("timedelta64[us]"),
    })[keep]
    now_naive = pd.Timestamp(now).tz_convert("UTC").tz_localize(None)
    df.loc[df.received_at > now_naive, "received_at"] = now_naive
    return df


def fold_hourly(readings: pd.DataFrame, facilities: pd.DataFrame) -> pd.DataFrame:
    """Readings as `python -m dashboard prune` keeps them once older than OCCUPANCY_RAW_DAYS
    (datasource/retention.py: fold_occupancy): one occupancy_hourly row per facility and UTC
    hour, with the readings clamped to the capacity, and the hour's last reading as read."""
    columns = ["facility_id", "hour", "readings", "occupied_sum", "occupied_max", "out_of_range",
               "last_observed_at", "last_occupied"]
    if readings.empty:
        return pd.DataFrame(columns=columns)
    observed = readings.observed_at.to_numpy("datetime64[us]")
    hour = observed.astype("datetime64[h]").astype(np.int64)
    fid = readings.facility_id.to_numpy()
    order = np.lexsort((observed, hour, fid))  # by facility, hour, time: the last is the newest
    fid, hour, observed = fid[order], hour[order], observed[order]
    occ = readings.occupied.to_numpy()[order]
    cap = facilities.set_index("id").capacity.reindex(fid).to_numpy()
    df = pd.DataFrame({"facility_id": fid, "h": hour, "clamped": np.clip(occ, 0, cap),
                       "oor": ((occ < 0) | (occ > cap)).astype(np.int64), "last_observed_at": observed,
                       "last_occupied": occ})
    out = df.groupby(["facility_id", "h"], sort=False).agg(
        readings=("clamped", "size"), occupied_sum=("clamped", "sum"), occupied_max=("clamped", "max"),
        out_of_range=("oor", "sum"), last_observed_at=("last_observed_at", "last"),
        last_occupied=("last_occupied", "last")).reset_index()
    # the hour's key ('YYYY-MM-DD HH', UTC) formatted once per distinct hour
    hours, inverse = np.unique(out.h.to_numpy(), return_inverse=True)
    keys = np.char.replace(np.datetime_as_string(hours.astype("datetime64[h]"), unit="h"), "T", " ")
    out["hour"] = keys.astype(object)[inverse]
    return out[columns]
