"""KPI definitions (docs/kpis.md): SQL aggregates from datasource.kpi_queries turned into
snapshot sections by pure functions. Every computation takes `now` and the time zone."""
