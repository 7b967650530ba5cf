"""Component ids shared by layouts and callbacks."""
HOME_LOCATION = "home-location"
HOME_INTERVAL = "home-interval"
HOME_BODY = "home-body"
HOME_NOTICE = "home-notice"
HOME_TITLE = "home-title"
HOME_SHOWN = "home-shown"
HOME_FRESHNESS = "home-freshness"

# the wall (/wall); panel ids come from layouts.wall.render.PANELS
WALL_ROOT = "wall-root"
WALL_CANVAS = "wall-canvas"
WALL_PAGES = "wall-pages"
WALL_REFRESH = "wall-refresh"
WALL_TICK = "wall-tick"
WALL_CONFIG = "wall-config"
WALL_SHOWN = "wall-shown"
WALL_HEAD = "wall-head"
WALL_DATE = "wall-date"
WALL_CLOCK = "wall-clock"
WALL_LIGHT = "wall-light"
WALL_ASOF = "wall-asof"
WALL_DOTS = "wall-dots"
WALL_NOTICES = "wall-notices"

# the browsing pages (/browse, /browse/enterprise, /browse/parking) and /case/<ref>
BROWSE_LOCATION = "browse-location"
BROWSE_PAGE = "browse-page"
BROWSE_NOTICES = "browse-notices"
BROWSE_SUMMARY = "browse-summary"
BROWSE_BODY = "browse-body"
BROWSE_CASES = "browse-cases"          # container of the case list
BROWSE_CASES_KEY = "browse-cases-key"  # what the case list shows (all but its sort)
BROWSE_EXPORTS = "browse-exports"
BROWSE_NAV = "browse-nav"              # pattern id {"type": BROWSE_NAV, "to": "?query"}
BROWSE_GRID = "browse-case-grid"       # pattern id {"type": BROWSE_GRID, "key": ...}
# filter controls: (id, property) in the order the state callback lists them
BROWSE_CONTROLS = (
    ("browse-period", "value"), ("browse-from", "value"), ("browse-to", "value"),
    ("browse-compare", "value"), ("browse-cfrom", "value"), ("browse-cto", "value"),
    ("browse-district", "value"), ("browse-street", "value"), ("browse-grid", "value"),
    ("browse-category", "value"), ("browse-source", "value"), ("browse-list", "value"),
    ("browse-egrid", "value"), ("browse-ptype", "value"), ("browse-facility", "value"),
)
# controls whose options depend on the store and the scope
BROWSE_OPTIONS = ("browse-district", "browse-street", "browse-grid", "browse-category", "browse-egrid",
                  "browse-facility", "browse-source")
BROWSE_OTHER_LANG = "browse-other-lang"  # the header's link to the other language
CASE_LOCATION = "case-location"
CASE_BODY = "case-body"
