"""UI strings in zh-CN (default) and English."""
from __future__ import annotations

LANGUAGES = ("zh-CN", "en")

STRINGS: dict[str, dict[str, str]] = {
    "open_cases_title": {"zh-CN": "各区在办案件", "en": "Open cases by district"},
    "district": {"zh-CN": "区域", "en": "District"},
    "open_cases": {"zh-CN": "在办案件", "en": "Open cases"},
    "total": {"zh-CN": "全市合计", "en": "City total"},
    "data_as_of": {"zh-CN": "数据截至", "en": "Data as of"},
    "read_at": {"zh-CN": "刷新于", "en": "Refreshed"},
    "no_data": {"zh-CN": "暂无数据", "en": "No data yet"},
    "store_error": {"zh-CN": "数据源不可用，显示的是上次成功读取的数据", "en":
                    "The incident store is unreachable; showing the last figures read"},
    "bad_lang": {"zh-CN": "未知语言参数 {value}，已使用中文", "en": "Unknown language {value}; using English"},
    "loading": {"zh-CN": "加载中…", "en": "Loading…"},
    # --- the wall ---
    "bad_district": {"zh-CN": "未知区域代码 {value}，已显示全市", "en": "Unknown district code {value}; showing the city"},
    "bad_kpi": {"zh-CN": "未知地图指标 {value}，已使用{default}", "en": "Unknown map KPI {value}; using {default}"},
    "bad_rotate": {"zh-CN": "轮播参数 {value} 无效（应为 10 秒以上的整数），已停止轮播",
                   "en": "Invalid rotate value {value} (expected whole seconds, 10 or more); not rotating"},
    "bad_page": {"zh-CN": "未知页面 {value}，已显示总览", "en": "Unknown page {value}; showing the overview"},
    "city": {"zh-CN": "全市", "en": "City"},
    "page_overview": {"zh-CN": "总览", "en": "Overview"},
    "page_cases": {"zh-CN": "案件处置", "en": "Cases"},
    "page_enterprise": {"zh-CN": "助企服务", "en": "Enterprise service"},
    "page_parking": {"zh-CN": "停车治理", "en": "Parking"},
    "light_fresh": {"zh-CN": "数据实时", "en": "Live"},
    "light_stale": {"zh-CN": "数据滞后 · 自 {since}", "en": "Stale since {since}"},
    "light_error": {"zh-CN": "数据源异常 · 自 {since}", "en": "Store error since {since}"},
    "light_waiting": {"zh-CN": "等待首次数据", "en": "Waiting for the first data"},
    "updated_ago": {"zh-CN": "{n} 秒前更新", "en": "updated {n} s ago"},
    "status_fresh": {"zh-CN": "实时", "en": "Live"},
    "status_stale": {"zh-CN": "滞后 · 自 {since}", "en": "Stale since {since}"},
    "status_error": {"zh-CN": "异常 · 自 {since}", "en": "Error since {since}"},
    "status_empty": {"zh-CN": "暂无数据", "en": "No data"},
    "status_waiting": {"zh-CN": "等待数据", "en": "Waiting for data"},
    "level_good": {"zh-CN": "良好", "en": "Good"},
    "level_watch": {"zh-CN": "关注", "en": "Watch"},
    "level_alert": {"zh-CN": "告警", "en": "Alert"},
    "vs_yesterday": {"zh-CN": "较昨日", "en": "vs yesterday"},
    "vs_last_week": {"zh-CN": "较上周", "en": "vs last week"},
    "vs_last_month": {"zh-CN": "较上月", "en": "vs last month"},
    "vs_last_year": {"zh-CN": "较去年", "en": "vs last year"},
    "vs_last_hour": {"zh-CN": "较上一小时", "en": "vs last hour"},
    "today_flow": {"zh-CN": "今日立案 {filed} · 结案 {closed}", "en": "today filed {filed} · closed {closed}"},
    "overdue_new": {"zh-CN": "24小时新增超期 {n}", "en": "{n} newly overdue in 24 h"},
    "period_today": {"zh-CN": "今日", "en": "today"},
    "period_week": {"zh-CN": "本周", "en": "this week"},
    "period_month": {"zh-CN": "本月", "en": "this month"},
    "period_year": {"zh-CN": "本年", "en": "this year"},
    "card_open": {"zh-CN": "在办案件", "en": "Open cases"},
    "card_overdue": {"zh-CN": "超期案件", "en": "Overdue"},
    "card_reported": {"zh-CN": "今日上报", "en": "Reported today"},
    "card_closed": {"zh-CN": "今日结案", "en": "Closed today"},
    "card_closure": {"zh-CN": "结案率", "en": "Closure rate"},
    "card_on_time": {"zh-CN": "按期结案率", "en": "On-time closure"},
    "card_visits": {"zh-CN": "走访企业", "en": "Enterprise visits"},
    "card_resolution": {"zh-CN": "问题解决率", "en": "Problem resolution"},
    "card_occupancy": {"zh-CN": "车位占用率", "en": "Parking occupancy"},
    "stage_filed": {"zh-CN": "待派遣", "en": "Awaiting dispatch"},
    "stage_dispatched": {"zh-CN": "处置中", "en": "Being handled"},
    "stage_handled": {"zh-CN": "待核查", "en": "Awaiting verification"},
    "stage_verified": {"zh-CN": "待结案", "en": "Awaiting closing"},
    "stage_rework": {"zh-CN": "返工中", "en": "In rework"},
    "stage_parked": {"zh-CN": "挂账", "en": "Parked"},
    "panel_open_stage": {"zh-CN": "各区在办案件（按环节）", "en": "Open cases by district and stage"},
    "panel_closure_rank": {"zh-CN": "{period}结案率排名", "en": "Closure rate ranking, {period}"},
    "panel_trend": {"zh-CN": "近30日上报与结案", "en": "Reported vs closed, last 30 days"},
    "panel_trend_city": {"zh-CN": "近30日上报与结案（全市）", "en": "Reported vs closed, last 30 days (city)"},
    "panel_categories": {"zh-CN": "在办案件类别", "en": "Open cases by category"},
    "panel_ageing": {"zh-CN": "超期时长分布", "en": "Overdue ageing"},
    "panel_rates": {"zh-CN": "{period}各区处置指标", "en": "District case KPIs, {period}"},
    "panel_map": {"zh-CN": "区域态势 · {kpi}", "en": "Districts · {kpi}"},
    "panel_ticker": {"zh-CN": "最新案件与新增超期", "en": "Newest and newly overdue cases"},
    "panel_ent_summary": {"zh-CN": "{period}助企服务", "en": "Enterprise service, {period}"},
    "panel_ent_visits": {"zh-CN": "{period}各区走访与问题", "en": "Visits and problems by district, {period}"},
    "panel_ent_types": {"zh-CN": "{period}问题类型", "en": "Problems by type, {period}"},
    "panel_ent_resolution": {"zh-CN": "{period}各区问题解决率", "en": "Resolution rate by district, {period}"},
    "panel_ent_grids": {"zh-CN": "专属网格覆盖（{period}）", "en": "Exclusive-grid coverage, {period}"},
    "panel_park_now": {"zh-CN": "各区车位占用率（当前）", "en": "Parking occupancy by district, now"},
    "panel_park_curve": {"zh-CN": "今日占用率曲线", "en": "Occupancy through today"},
    "panel_park_capacity": {"zh-CN": "各区车位容量", "en": "Capacity by district"},
    "panel_park_programme": {"zh-CN": "本年新增·盘活·共享车位", "en": "Spaces added, revitalised, shared this year"},
    "panel_park_summary": {"zh-CN": "停车概况", "en": "Parking at a glance"},
    "reported": {"zh-CN": "上报", "en": "Reported"},
    "closed": {"zh-CN": "结案", "en": "Closed"},
    "overdue": {"zh-CN": "超期", "en": "Overdue"},
    "new_case": {"zh-CN": "新案件", "en": "New"},
    "newly_overdue": {"zh-CN": "新超期", "en": "Overdue"},
    "no_items": {"zh-CN": "暂无", "en": "None"},
    "visits": {"zh-CN": "走访", "en": "Visits"},
    "enterprises_visited": {"zh-CN": "走访企业数", "en": "Enterprises visited"},
    "problems_raised": {"zh-CN": "收集问题", "en": "Problems raised"},
    "problems_resolved": {"zh-CN": "解决问题", "en": "Resolved"},
    "problems_open": {"zh-CN": "待解决", "en": "Open problems"},
    "resolution_rate": {"zh-CN": "解决率", "en": "Resolution rate"},
    "avg_resolve_days": {"zh-CN": "平均解决天数", "en": "Avg days to resolve"},
    "grid_coverage": {"zh-CN": "走访覆盖率", "en": "Visit coverage"},
    "grids_visited": {"zh-CN": "已走访专属网格", "en": "Exclusive grids visited"},
    "facilities": {"zh-CN": "停车设施", "en": "Facilities"},
    "capacity": {"zh-CN": "泊位", "en": "Spaces"},
    "occupied_now": {"zh-CN": "当前占用", "en": "Occupied now"},
    "occupancy": {"zh-CN": "占用率", "en": "Occupancy"},
    "on_street": {"zh-CN": "路内", "en": "On-street"},
    "off_street": {"zh-CN": "路外", "en": "Off-street"},
    "shared": {"zh-CN": "共享", "en": "Shared"},
    "added": {"zh-CN": "新增", "en": "Added"},
    "revitalised": {"zh-CN": "盘活", "en": "Revitalised"},
    "non_motor_points": {"zh-CN": "非机动车停放点", "en": "Non-motor points"},
    "demo_sites": {"zh-CN": "示范点", "en": "Demonstration sites"},
    "stale_facilities": {"zh-CN": "读数过期设施", "en": "Facilities with stale readings"},
    "reporting_facilities": {"zh-CN": "在线设施", "en": "Reporting facilities"},
    "closure_rate": {"zh-CN": "结案率", "en": "Closure rate"},
    "on_time_closure_rate": {"zh-CN": "按期结案率", "en": "On-time closure"},
    "handling_rate": {"zh-CN": "处置率", "en": "Handling rate"},
    "on_time_handling_rate": {"zh-CN": "按期处置率", "en": "On-time handling"},
    "rework_rate": {"zh-CN": "返工率", "en": "Rework rate"},
    "extension_rate": {"zh-CN": "延期率", "en": "Extension rate"},
    "avg_close_hours": {"zh-CN": "平均结案时长(小时)", "en": "Avg hours to close"},
    "kpi_open_cases": {"zh-CN": "在办案件", "en": "Open cases"},
    "kpi_overdue": {"zh-CN": "超期案件", "en": "Overdue cases"},
    "kpi_closure_rate": {"zh-CN": "本月结案率", "en": "Closure rate (month)"},
    "kpi_on_time_closure_rate": {"zh-CN": "本月按期结案率", "en": "On-time closure (month)"},
    "kpi_occupancy": {"zh-CN": "车位占用率", "en": "Parking occupancy"},
    "kpi_visits": {"zh-CN": "本月走访", "en": "Visits (month)"},
    "kpi_resolution_rate": {"zh-CN": "本月问题解决率", "en": "Problem resolution (month)"},
    "hour": {"zh-CN": "时", "en": "h"},
    "hours_0_24": {"zh-CN": "1天内", "en": "< 1 day"},
    "hours_24_72": {"zh-CN": "1-3天", "en": "1-3 days"},
    "hours_72_168": {"zh-CN": "3-7天", "en": "3-7 days"},
    "hours_168_720": {"zh-CN": "7-30天", "en": "7-30 days"},
    "hours_720_": {"zh-CN": "30天以上", "en": "30 days +"},
    "no_polygon": {"zh-CN": "（无边界，按中心点标注）", "en": "(no boundary: shown at its centre)"},
    "ptype_hiring": {"zh-CN": "用工", "en": "Hiring"},
    "ptype_licence": {"zh-CN": "办证", "en": "Licences"},
    "ptype_tax": {"zh-CN": "税务", "en": "Tax"},
    "ptype_financing": {"zh-CN": "融资", "en": "Financing"},
    "ptype_infrastructure": {"zh-CN": "基础设施", "en": "Infrastructure"},
    "ptype_safety": {"zh-CN": "安全", "en": "Safety"},
    "ptype_other": {"zh-CN": "其他", "en": "Other"},
    "render_failed": {"zh-CN": "该面板暂时无法显示", "en": "This panel cannot be shown right now"},
    "reload_notice": {"zh-CN": "服务已更新，正在重新加载…", "en": "The server was updated; reloading…"},
}


def t(key: str, lang: str, **fmt) -> str:
    text = STRINGS[key].get(lang) or STRINGS[key]["zh-CN"]
    return text.format(**fmt) if fmt else text


def t_or(key: str, lang: str, fallback: str) -> str:
    """The string for `key`, or `fallback` when there is none (codes a city added itself)."""
    return t(key, lang) if key in STRINGS else fallback


def pick_language(requested: str | None, default: str) -> tuple[str, str | None]:
    """(language to use, warning to show or None) for a `?lang=` value."""
    if not requested:
        return default, None
    for lang in LANGUAGES:
        if requested.lower() in (lang.lower(), lang.split("-")[0].lower()):
            return lang, None
    return default, t("bad_lang", default, value=requested)


def district_name(row: dict, lang: str) -> str:
    return row["name_en"] if lang == "en" else row["short_zh"]
