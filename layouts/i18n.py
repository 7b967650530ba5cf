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
}


def t(key: str, lang: str, **fmt) -> str:
    text = STRINGS[key].get(lang) or STRINGS[key]["zh-CN"]
    return text.format(**fmt) if fmt else text


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
