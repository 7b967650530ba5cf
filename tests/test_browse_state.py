"""The browsing pages' URL state: every bad input becomes a notice and a valid fallback,
never an exception; a state written back to a URL parses to the same state."""
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard import browse_state as bs
from dashboard.scope import Scope

TZ = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 11, 26, 4, 0, tzinfo=dt.timezone.utc)  # Thursday 12:00 in Shanghai
CITY = Scope()
JINSHUI = Scope(frozenset({"410105"}), role="district_leader")


class FakeLookup:
    def district_codes(self):
        return ["410102", "410103", "410105"]

    def street(self, street_id):
        return {1: {"district": "410102"}, 2: {"district": "410105"}}.get(street_id)

    def grid(self, grid_id):
        return {10: {"district": "410105", "street_id": 2, "kind": "ordinary"},
                11: {"district": "410102", "street_id": 1, "kind": "ordinary"},
                12: {"district": "410105", "street_id": 2, "kind": "exclusive"}}.get(grid_id)

    def categories(self):
        return {"S01": None, "S01-01": "S01"}

    def sources(self):
        return {"app": {}, "hotline": {}, "Email": {}}

    def facility(self, facility_id):
        return {5: {"district": "410105"}, 6: {"district": "410102"}}.get(facility_id)


def parse(query, scope=CITY):
    return bs.parse(query, scope=scope, lookup=FakeLookup(), now=NOW, tz=TZ)


def keys(notices):
    return [k for k, _ in notices]


def test_defaults_and_a_full_valid_url():
    s, notices = parse({})
    assert s == bs.ViewState() and notices == []
    s, notices = parse({"period": "custom", "from": "2026-11-01", "to": "2026-11-15", "compare": "custom",
                        "cfrom": "2025-11-01", "cto": "2025-11-15", "district": "410105", "street": "2",
                        "grid": "10", "category": "S01", "source": "hotline", "list": "overdue",
                        "sort": "-closure_rate", "csort": "deadline_at", "lang": "en"})
    assert notices == []
    assert (s.period, s.date_from, s.date_to, s.compare) == ("custom", dt.date(2026, 11, 1),
                                                            dt.date(2026, 11, 15), "custom")
    assert (s.district, s.street, s.grid, s.category, s.source, s.list) == ("410105", 2, 10, "S01", "hotline",
                                                                           "overdue")
    again, _ = parse(bs.query_dict(s.search("en")))
    assert again == s


@pytest.mark.parametrize("query, notice", [
    ({"period": "fortnight"}, "bad_period"),
    ({"period": "custom", "from": "2026-13-01", "to": "2026-11-02"}, "bad_dates"),
    ({"period": "custom", "from": "26-11-01", "to": "2026-11-02"}, "bad_dates"),
    ({"period": "custom", "from": "2026-02-30", "to": "2026-03-02"}, "bad_dates"),
    ({"period": "custom", "from": "<script>", "to": ""}, "bad_dates"),
    ({"period": "custom"}, "bad_dates"),
    ({"period": "custom", "from": "2026-11-20", "to": "2026-11-02"}, "dates_reversed"),
    ({"period": "custom", "from": "1999-01-01", "to": "1999-02-01"}, "dates_out_of_range"),
    ({"period": "custom", "from": "2027-01-01", "to": "2027-02-01"}, "dates_out_of_range"),
    ({"period": "custom", "from": "2001-01-01", "to": "2026-01-01"}, "dates_too_long"),
    ({"compare": "custom", "cfrom": "x"}, "bad_dates"),
    ({"compare": "yesterday"}, "bad_compare"),
    ({"district": "999999"}, "unknown_district_browse"),
    ({"street": "abc"}, "unknown_street"),
    ({"street": "99"}, "unknown_street"),
    ({"street": "1" * 40}, "unknown_street"),
    ({"grid": "-3"}, "unknown_grid"),
    ({"district": "410102", "grid": "10"}, "unknown_grid"),
    ({"category": "Z99"}, "unknown_category"),
    ({"source": "pigeon"}, "unknown_source"),
    ({"list": "everything"}, "unknown_list"),
    ({"sort": "DROP TABLE"}, "unknown_sort"),
    ({"csort": "password"}, "unknown_sort"),
    ({"egrid": "10"}, "unknown_egrid"),  # an ordinary grid is not an exclusive one
    ({"ptype": "bribes"}, "unknown_ptype"),
    ({"facility": "77"}, "unknown_facility"),
    ({"utm_source": "mail"}, "unknown_param"),
])
def test_bad_input_is_a_notice_and_a_valid_fallback(query, notice):
    s, notices = parse(query)
    assert notice in keys(notices)
    assert s.period in bs.PRESETS and s.list in bs.LISTS
    w = bs.window(s, NOW, TZ)  # whatever came in, the state has a valid window
    assert w.start <= w.end <= NOW and w.prev_start <= w.prev_end


def test_a_future_end_is_clamped_to_now():
    s, notices = parse({"period": "custom", "from": "2026-11-20", "to": "2026-12-31"})
    assert notices == [] and s.date_to == dt.date(2026, 11, 26)
    assert bs.window(s, NOW, TZ).end == NOW


def test_street_sets_its_district_and_grid_its_street():
    s, notices = parse({"grid": "10"})
    assert notices == [] and (s.district, s.street, s.grid) == ("410105", 2, 10)
    s, notices = parse({"district": "410102", "street": "2"})
    assert "unknown_street" in keys(notices) and (s.district, s.street) == ("410102", None)


def test_a_district_leader_never_gets_another_district():
    s, notices = parse({}, JINSHUI)
    assert s.district == "410105" and notices == []  # a one-district scope starts at home
    for query in ({"district": "410102"}, {"street": "1"}, {"grid": "11"}, {"facility": "6"},
                  {"district": "410102", "street": "1", "grid": "11"}):
        s, notices = parse(query, JINSHUI)
        assert s.district == "410105", query
        assert s.street in (None, 2) and s.grid in (None, 10) and s.facility is None
        assert notices, query
    # an out-of-scope district reads exactly like an unknown one
    assert keys(parse({"district": "410102"}, JINSHUI)[1]) == keys(parse({"district": "999999"}, JINSHUI)[1])


def test_windows_of_the_presets():
    w = bs.window(bs.ViewState(period="week"), NOW, TZ)
    assert w.start == dt.datetime(2026, 11, 22, 16, tzinfo=dt.timezone.utc)  # Monday 00:00 local
    assert w.prev_end - w.prev_start == w.end - w.start and w.prev_end == w.start - dt.timedelta(days=7) + (NOW - w.start)
    w = bs.window(bs.ViewState(period="last_week"), NOW, TZ)
    assert (w.start, w.end) == (dt.datetime(2026, 11, 15, 16, tzinfo=dt.timezone.utc),
                                dt.datetime(2026, 11, 22, 16, tzinfo=dt.timezone.utc))
    assert (w.prev_start, w.prev_end) == (dt.datetime(2026, 11, 8, 16, tzinfo=dt.timezone.utc), w.start)
    s, _ = parse({"period": "custom", "from": "2026-11-01", "to": "2026-11-10"})
    w = bs.window(s, NOW, TZ)
    assert w.end - w.start == dt.timedelta(days=10) and w.prev_end == w.start
    assert w.prev_end - w.prev_start == dt.timedelta(days=10)
    s, _ = parse({"compare": "custom", "cfrom": "2025-11-24", "cto": "2025-11-26"})
    w = bs.window(s, NOW, TZ)
    assert (w.prev_start, w.prev_end) == (dt.datetime(2025, 11, 23, 16, tzinfo=dt.timezone.utc),
                                          dt.datetime(2025, 11, 26, 16, tzinfo=dt.timezone.utc))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(bs.PARAMS + ("x", "")), st.text(max_size=24), max_size=8))
def test_any_query_parses_to_a_valid_state(query):
    for scope in (CITY, JINSHUI):
        s, _ = parse(query, scope)
        w = bs.window(s, NOW, TZ)
        assert w.start <= w.end <= NOW
        assert scope.allows(s.district) or (s.district is None and scope.city_wide)
        assert parse(bs.query_dict(s.search()), scope)[0] == s


def test_a_source_is_any_of_the_stores_sources():
    """Sources are reference data: a city's own (Email) filters, one it does not have does not."""
    s, notices = parse({"source": "Email"})
    assert s.source == "Email" and notices == []
    s, notices = parse({"source": "sensor"})  # a demo source this store does not have
    assert s.source is None and keys(notices) == ["unknown_source"]
