"""Words and number formats of the weekly report, in zh-CN (default) and English."""
from __future__ import annotations

from layouts.i18n import t as ui

STRINGS: dict[str, dict[str, str]] = {
    "title": {"zh-CN": "城市运行周报", "en": "Weekly city operations report"},
    "week_range": {"zh-CN": "{week}（{first} 至 {last}）", "en": "{week} ({first} to {last})"},
    "vs_prev": {"zh-CN": "较上周", "en": "vs previous week"},
    "data_as_of": {"zh-CN": "数据截至", "en": "Data as of"},
    "generated": {"zh-CN": "生成于", "en": "Generated"},
    "app_version": {"zh-CN": "版本", "en": "Version"},
    "summary": {"zh-CN": "本周概况", "en": "The week at a glance"},
    "sec_cases": {"zh-CN": "案件处置", "en": "Cases"},
    "sec_districts": {"zh-CN": "各区案件指标", "en": "Case KPIs by district"},
    "sec_overdue": {"zh-CN": "超期案件（周末在办，超期最久的{n}件）", "en": "Overdue cases at the week's end (the {n} most overdue)"},
    "sec_enterprise": {"zh-CN": "助企服务", "en": "Enterprise service"},
    "sec_parking": {"zh-CN": "停车治理", "en": "Parking"},
    "not_recorded": {"zh-CN": "未记录", "en": "Not recorded"},
    "not_recorded_note": {"zh-CN": "本市未记录此项数据（城市档案），本报告不含其指标。",
                          "en": "The city does not record this subject (its city profile): the report has no figures for it."},
    "fig_daily": {"zh-CN": "每日上报、立案与结案", "en": "Reported, filed and closed per day"},
    "fig_stage": {"zh-CN": "周末在办案件（按环节）", "en": "Open cases at the week's end, by stage"},
    "fig_ageing": {"zh-CN": "周末超期时长分布", "en": "Overdue ageing at the week's end"},
    "fig_rates": {"zh-CN": "各区结案率：本周与上周", "en": "Closure rate by district: this week and last"},
    "fig_visits": {"zh-CN": "每日走访企业", "en": "Enterprise visits per day"},
    "fig_types": {"zh-CN": "本周问题类型", "en": "Problems raised by type"},
    "fig_occupancy": {"zh-CN": "每日车位占用率：本周与上周", "en": "Parking occupancy per day: this week and last"},
    "fig_occ_district": {"zh-CN": "各区本周平均占用率", "en": "Average occupancy this week by district"},
    "this_week": {"zh-CN": "本周", "en": "This week"},
    "last_week": {"zh-CN": "上周", "en": "Last week"},
    "change": {"zh-CN": "变化", "en": "Change"},
    "filed": {"zh-CN": "立案", "en": "Filed"},
    "avg_handle_hours": {"zh-CN": "平均处置时长(小时)", "en": "Avg hours to handle"},
    "open_at_end": {"zh-CN": "周末在办", "en": "Open at week end"},
    "overdue_at_end": {"zh-CN": "周末超期", "en": "Overdue at week end"},
    "open_problems_at_end": {"zh-CN": "周末待解决问题", "en": "Open problems at week end"},
    "occupancy_week": {"zh-CN": "本周平均占用率", "en": "Average occupancy"},
    "occupancy_at_end": {"zh-CN": "周末占用率", "en": "Occupancy at week end"},
    "added_spaces_week": {"zh-CN": "新增车位", "en": "Spaces added"},
    "revitalised_spaces_week": {"zh-CN": "盘活车位", "en": "Spaces revitalised"},
    "shared_spaces_week": {"zh-CN": "共享车位", "en": "Spaces shared"},
    "code": {"zh-CN": "代码", "en": "Code"},
    "name": {"zh-CN": "区域", "en": "District"},
    "case_no": {"zh-CN": "案件编号", "en": "Case"},
    "category": {"zh-CN": "类别", "en": "Category"},
    "stage": {"zh-CN": "环节", "en": "Stage"},
    "address": {"zh-CN": "地址", "en": "Address"},
    "deadline": {"zh-CN": "处置时限", "en": "Deadline"},
    "overdue_hours": {"zh-CN": "超期(小时)", "en": "Overdue (h)"},
    "none": {"zh-CN": "无", "en": "None"},
    "grid": {"zh-CN": "专属网格", "en": "Exclusive grid"},
    "members": {"zh-CN": "成员企业", "en": "Members"},
    "sheet_cases": {"zh-CN": "各区案件指标", "en": "Cases by district"},
    "sheet_enterprise": {"zh-CN": "助企服务", "en": "Enterprise service"},
    "sheet_parking": {"zh-CN": "停车治理", "en": "Parking"},
    "col_prev": {"zh-CN": "{name}(上周)", "en": "{name} (prev. week)"},
    "col_delta": {"zh-CN": "{name}(较上周)", "en": "{name} (change)"},
    "table_note": {"zh-CN": "小字为较上周的变化；比率的变化以百分点计。",
                   "en": "Small figures: change against the previous week; rates change in percentage points."},
    "as_of_note": {"zh-CN": "口径：期间指标按本周（周一00:00至下周一00:00）统计；结案率等按本周立案案件在周末时的办理结果计算；"
                             "“周末在办/超期”为周日24:00时的状态。",
                   "en": "Period figures cover Monday 00:00 to the next Monday 00:00; rates are the week's filed cases "
                         "as they stood at the week's end; 'at week end' figures are the state at Sunday 24:00."},
}


def t(key: str, lang: str, **fmt) -> str:
    """The report's own strings first, then the dashboard's (KPI and stage names)."""
    if key in STRINGS:
        text = STRINGS[key].get(lang) or STRINGS[key]["zh-CN"]
        return text.format(**fmt) if fmt else text
    return ui(key, lang, **fmt)


def fmt(value, kind: str) -> str:
    if value is None:
        return "—"
    if kind == "count":
        return f"{int(round(value)):,}"
    if kind == "rate":
        return f"{value * 100:.1f}%"
    if kind == "number":
        return f"{value:,.1f}"
    return str(value)


def fmt_delta(value, kind: str, lang: str, short: bool = False) -> str:
    """A change with its sign; a rate's change in percentage points (`short`: without the unit)."""
    if value is None:
        return "—"
    if kind == "count":
        return f"{int(round(value)):+,}"
    if kind == "rate":
        return f"{value * 100:+.1f}" + ("" if short else "个百分点" if lang != "en" else " pts")
    return f"{value:+,.1f}"
