"""How good a KPI value is: the threshold levels behind the wall's colours and words.

A level is "good", "watch" or "alert" (or None when there is no value to judge). The
wall shows each level with a colour *and* a word and an icon, never colour alone.
docs/kpis.md lists these thresholds.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    good: float  # at or better than this: good
    watch: float  # at or better than this: watch; worse: alert
    higher_is_better: bool = True

    def level(self, value: float | None) -> str | None:
        if value is None:
            return None
        if self.higher_is_better:
            return "good" if value >= self.good else "watch" if value >= self.watch else "alert"
        return "good" if value <= self.good else "watch" if value <= self.watch else "alert"


RULES: dict[str, Rule] = {
    "closure_rate": Rule(0.95, 0.90),
    "on_time_closure_rate": Rule(0.90, 0.80),
    "handling_rate": Rule(0.95, 0.90),
    "on_time_handling_rate": Rule(0.90, 0.80),
    "resolution_rate": Rule(0.95, 0.90),
    "rework_rate": Rule(0.05, 0.10, higher_is_better=False),
    "extension_rate": Rule(0.05, 0.10, higher_is_better=False),
    "overdue_share": Rule(0.10, 0.25, higher_is_better=False),  # overdue / open
    "occupancy": Rule(0.85, 0.95, higher_is_better=False),
}


def level(kpi: str, value: float | None) -> str | None:
    rule = RULES.get(kpi)
    return rule.level(value) if rule else None


def better(kpi: str, delta: float | None) -> bool | None:
    """Whether a change is an improvement (for the delta's arrow colour); None: neutral."""
    if delta is None or delta == 0:
        return None
    rule = RULES.get(kpi)
    if rule is None:
        return None
    return (delta > 0) == rule.higher_is_better
