"""The big-screen wall (/wall): view parameters, figures, panels, page."""
