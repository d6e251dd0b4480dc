"""SQL reporting over the mirrored tables: the daily rollups (``rollups``), retention that keeps their history
(``retention``) and the report queries (``queries``). Dagster-free data functions: each takes the caller's session and
never commits; the assets (``maestro_dagster.assets``), the CLI and the API call them. The reporting views are
created by migration 0006 and documented in docs/schema.md."""
