"""Engines: what runs the lazy part of the flow (DuckDB embedded, Spark)."""
