"""Built-in synonyms for the schema's enumerated values.

Only the standard terms (GB/T 30428 lifecycle names, the usual source and facility
words) are here, so that an export using them needs no `values:` mapping. Anything
city-specific or ambiguous (处置中: dispatched or handled?) belongs in the mapping.
Keys are matched case-insensitively.
"""
from __future__ import annotations

SYNONYMS: dict[str, dict[str, str]] = {
    "status": {
        "上报": "reported", "已上报": "reported", "待立案": "reported",
        "立案": "filed", "已立案": "filed",
        "派遣": "dispatched", "已派遣": "dispatched", "派发": "dispatched", "已派发": "dispatched",
        "处置": "handled", "已处置": "handled", "处置完成": "handled", "已处理": "handled",
        "核查": "verified", "已核查": "verified", "核查通过": "verified",
        "结案": "closed", "已结案": "closed", "办结": "closed", "已办结": "closed", "已关闭": "closed",
        "返工": "rework", "挂账": "parked", "作废": "voided", "已作废": "voided",
    },
    "source": {
        "郑好拍": "app", "城管随手拍": "app", "随手拍": "app", "市民上报": "app",
        "12345": "hotline", "12345热线": "hotline", "热线": "hotline", "12319": "hotline",
        "巡查": "patrol", "巡查上报": "patrol", "网格员": "patrol", "网格巡查": "patrol",
        "企业": "enterprise", "企业服务": "enterprise", "走访": "enterprise",
        "感知": "sensor", "物联感知": "sensor", "传感器": "sensor", "视频智能识别": "sensor",
    },
    "kind": {  # parking facilities
        "路内": "on_street", "路内停车": "on_street", "路侧": "on_street", "路侧停车": "on_street",
        "路外": "off_street", "停车场": "off_street", "路外停车场": "off_street",
        "共享": "shared", "共享停车": "shared", "共享停车场": "shared",
        "非机动车": "non_motor", "非机动车停放点": "non_motor",
    },
    "programme": {"新增": "added", "盘活": "revitalised", "共享": "shared"},
    "problem_type": {
        "用工": "hiring", "招聘": "hiring", "办证": "licence", "证照": "licence",
        "税务": "tax", "融资": "financing", "基础设施": "infrastructure", "安全": "safety",
        "安全生产": "safety", "其他": "other",
    },
    "problem_status": {"待解决": "open", "未解决": "open", "办理中": "open",
                       "已解决": "resolved", "解决": "resolved", "办结": "resolved"},
    # reference data (--kind districts, grids, categories)
    "district_kind": {"区": "district", "县": "district", "市辖区": "district", "开发区": "zone",
                      "功能区": "zone", "新区": "zone"},
    "grid_kind": {"普通": "ordinary", "普通网格": "ordinary", "专属": "exclusive", "专属网格": "exclusive"},
    "category_kind": {"部件": "component", "事件": "event"},
}
