"""Deterministic demo data: landing CSVs with learnable signal and planted bad rows, plus a static
business-directory website for the scraper (pure Python/numpy/pandas, no Dagster imports)."""
