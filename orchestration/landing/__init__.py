"""Landing-zone contract, row validation and idempotent loading into the raw schema (no Dagster imports)."""
