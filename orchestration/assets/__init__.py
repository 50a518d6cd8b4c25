"""Dagster asset definitions: thin wiring around the pure modules of this package and ml/."""
