"""The kinds of data the importer loads, by the name given to --kind."""
from __future__ import annotations

from datasource.importer.kinds.base import KindSpec
from datasource.importer.kinds.cases import SPEC as CASES
from datasource.importer.kinds.enterprise import ENTERPRISE_SPEC, PROBLEM_SPEC, VISIT_SPEC
from datasource.importer.kinds.parking import FACILITY_SPEC, OCCUPANCY_SPEC
from datasource.importer.kinds.reference import REFERENCE_SPECS

KINDS: dict[str, KindSpec] = {k.name: k for k in (*REFERENCE_SPECS, CASES, FACILITY_SPEC, OCCUPANCY_SPEC,
                                                  ENTERPRISE_SPEC, VISIT_SPEC, PROBLEM_SPEC)}
# loaded before the others: what cases, facilities and visits refer to
REFERENCE_KINDS = tuple(k.name for k in REFERENCE_SPECS)


def fields_markdown(kind: str) -> list[str]:
    """The table of a kind's fields in docs/import.md (a test keeps the doc in step)."""
    lines = ["| field | type | required | also read from | meaning |", "|---|---|---|---|---|"]
    for f in KINDS[kind].fields:
        aliases = ", ".join(f"`{a}`" for a in f.aliases)
        lines.append(f"| `{f.name}` | {f.type} | {'yes' if f.required else ''} | {aliases} | {f.doc} |")
    return lines
