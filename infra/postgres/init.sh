#!/usr/bin/env bash
# Creates Optimum's three databases, each owned by its own login role that only it may connect to:
#   dagster    Dagster runs, event logs, schedules  (DAGSTER_PG_USER / DAGSTER_PG_PASSWORD)
#   warehouse  dbt warehouse: raw, staging, marts    (WAREHOUSE_PG_USER / WAREHOUSE_PG_PASSWORD)
#   mlflow     MLflow tracking and model registry    (MLFLOW_PG_USER / MLFLOW_PG_PASSWORD)
# The postgres image runs it once, when it initialises an empty data volume; later changes to these
# variables do not reach an existing volume. Safe to run again: an existing role or database is left as
# it is. The database names can be overridden with DAGSTER_PG_DB, WAREHOUSE_PG_DB and MLFLOW_PG_DB.
# Outside the container it runs against whatever server psql's PG* variables (PGHOST, PGPORT) point to.
set -eo pipefail

admin="${POSTGRES_USER:-postgres}"

create_database() {
  local db="$1" role="$2" password="$3"
  if [ -z "$role" ] || [ -z "$password" ]; then
    echo "init.sh: database '$db' needs a role name and a non-empty password" >&2
    return 1
  fi
  if [ "$role" = "$admin" ]; then
    echo "init.sh: database '$db' must be owned by its own role, not the superuser '$admin'" >&2
    return 1
  fi
  # psql's :'var' quoting plus format(%I, %L) keep names and passwords safe whatever they contain.
  psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet --username "$admin" --dbname postgres \
    --set=db="$db" --set=role="$role" --set=password="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'role', :'password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role')
\gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')
\gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'db')
\gexec
SQL
  echo "init.sh: database '$db' owned by role '$role'"
}

create_database "${DAGSTER_PG_DB:-dagster}" "${DAGSTER_PG_USER:-}" "${DAGSTER_PG_PASSWORD:-}"
create_database "${WAREHOUSE_PG_DB:-warehouse}" "${WAREHOUSE_PG_USER:-}" "${WAREHOUSE_PG_PASSWORD:-}"
create_database "${MLFLOW_PG_DB:-mlflow}" "${MLFLOW_PG_USER:-}" "${MLFLOW_PG_PASSWORD:-}"
