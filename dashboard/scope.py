"""What the person (or display) behind a request may see: every district, or some.

Every query, callback and export asks `current_scope()` and narrows what it reads to
`scope.districts`; a request for a district outside the scope gets nothing (the
caller shows "not allowed" or falls back to the scope's own district), never data.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Scope:
    districts: frozenset[str] | None = None  # None: every district (city-wide roles)
    role: str = "admin"
    name: str = ""

    @property
    def city_wide(self) -> bool:
        return self.districts is None

    def allows(self, district: str | None) -> bool:
        """May this scope see `district` (None: the whole city)?"""
        if self.districts is None:
            return True
        return district is not None and district in self.districts

    def filter(self, codes: Iterable[str]) -> list[str]:
        """The codes this scope may see, in the given order."""
        return [c for c in codes if self.allows(c)]

    def default_district(self) -> str | None:
        """Where a restricted scope lands when it asks for the city: its own district
        (None for the city-wide, and for an empty scope, which may see nothing)."""
        return sorted(self.districts)[0] if self.districts else None

    def key(self) -> str:
        """For cache keys: two requests share a cached answer only with the same scope."""
        return "all" if self.districts is None else ",".join(sorted(self.districts))


EVERYTHING = Scope()


def current_scope() -> Scope:
    """The scope of the current request's user; see dashboard/auth.py."""
    from flask import current_app

    resolver = current_app.extensions.get("command_center_scope")
    return resolver() if resolver is not None else EVERYTHING
