"""The weekly report: one ISO week's KPIs against the previous week, exported as HTML,
PDF, a PNG of the wall, XLSX and a manifest, archived and scheduled (docs/weekly.md)."""
