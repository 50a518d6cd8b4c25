"""Code shared by the Dagster code location (`orchestration`) and the inference service (`serving`)."""
