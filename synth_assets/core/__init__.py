"""The engine: plain Python on numpy/polars/psycopg, no Dagster import."""
