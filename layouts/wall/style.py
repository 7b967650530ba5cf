"""The wall's visual language: colours, fonts, number formats, the plotly base layout.

Figures are plain dicts (plotly's JSON), built without validation: they are rendered
once per snapshot version, and browser tests check what the screen shows.
"""
from __future__ import annotations

FONT = '"Noto Sans CJK SC", "Noto Sans SC", "WenQuanYi Micro Hei", sans-serif'
TEXT = "#e6f0ff"
MUTED = "#8aa4c8"
GRID = "rgba(120,160,220,0.18)"
ACCENT = "#22d3ee"
LEVEL_COLOURS = {"good": "#22c55e", "watch": "#f59e0b", "alert": "#ef4444", None: "#5b8def"}
LEVEL_ICONS = {"good": "✓", "watch": "!", "alert": "✕"}
STAGE_COLOURS = {"filed": "#60a5fa", "dispatched": "#22d3ee", "handled": "#a78bfa",
                 "verified": "#34d399", "rework": "#f97316", "parked": "#64748b"}
SERIES = ["#22d3ee", "#f59e0b", "#a78bfa", "#34d399", "#f472b6", "#60a5fa", "#facc15",
          "#fb7185", "#4ade80"]
CHART_FONT_SIZE = 17


def count(value) -> str:
    return "—" if value is None else f"{value:,.0f}"


def percent(value, digits: int = 1) -> str:
    return "—" if value is None else f"{100 * value:.{digits}f}%"


def number(value, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def signed(value, kind: str) -> str:
    """A delta with its sign: counts as integers, rates in percentage points."""
    if value is None:
        return "—"
    if kind == "rate":
        return f"{100 * value:+.1f} pt" if value else "±0 pt"
    if kind == "hours":
        return f"{value:+.1f}"
    return f"{value:+,.0f}" if value else "±0"


def layout(**overrides) -> dict:
    """Transparent, dark, large type; sized by its container (the canvas is fixed)."""
    base = {
        "autosize": True,
        "margin": {"l": 12, "r": 16, "t": 8, "b": 34, "pad": 4},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"family": FONT, "color": TEXT, "size": CHART_FONT_SIZE},
        "showlegend": False,
        "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom",
                   "font": {"size": 15}, "bgcolor": "rgba(0,0,0,0)"},
        "xaxis": {"gridcolor": GRID, "zerolinecolor": GRID, "automargin": False,
                  "tickfont": {"size": 15}, "fixedrange": True},
        "yaxis": {"gridcolor": GRID, "zerolinecolor": GRID, "automargin": True,
                  "tickfont": {"size": 16}, "fixedrange": True},
        "hovermode": False,
        "transition": {"duration": 0},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return base


def message_figure(text: str) -> dict:
    """An empty chart that says why it is empty (never a blank box)."""
    return {"data": [], "layout": layout(
        xaxis={"visible": False}, yaxis={"visible": False},
        annotations=[{"text": text, "showarrow": False, "x": 0.5, "y": 0.5, "xref": "paper",
                      "yref": "paper", "font": {"size": 24, "color": MUTED}}])}
