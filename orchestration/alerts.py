"""Alerts: one row per failed monitoring check or failed run in monitoring.alerts, optionally POSTed to a
webhook (Settings.alert_webhook_url). A row marked `retrain` makes the retrain sensor start a retrain.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pandas as pd

from optimum.settings import Settings
from orchestration.warehouse import Connection, Warehouse

SCHEMA = "monitoring"
ALERTS = f"{SCHEMA}.alerts"
ALERT_COLUMNS = {
    "alert_id": "BIGINT",
    "raised_at": "TIMESTAMP",
    "kind": "VARCHAR",
    "subject": "VARCHAR",
    "message": "VARCHAR",
    "retrain": "BOOLEAN",
    "webhook_status": "VARCHAR",
}


def ensure_alerts_table(conn: Connection) -> None:
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    conn.execute(f"CREATE SEQUENCE IF NOT EXISTS {SCHEMA}.alert_id_seq")
    body = ", ".join(f"{name} {sql_type}" for name, sql_type in ALERT_COLUMNS.items())
    conn.execute(f"CREATE TABLE IF NOT EXISTS {ALERTS} ({body})")


def _post(url: str, alert: dict) -> str:
    """Deliver to the webhook; the outcome is recorded, a failure never fails the caller."""
    if not url:
        return "not configured"
    try:
        response = httpx.post(url, json={**alert, "raised_at": alert["raised_at"].isoformat()}, timeout=5)
        return f"HTTP {response.status_code}"
    except httpx.HTTPError as error:
        return f"failed: {type(error).__name__}: {error}"[:300]


def raise_alert(
    settings: Settings, warehouse: Warehouse, kind: str, subject: str, message: str, retrain: bool = False
) -> int:
    """Record an alert (and post it to the webhook); returns its id."""
    with warehouse.transaction() as conn:
        ensure_alerts_table(conn)
        alert_id = int(conn.scalar(f"SELECT nextval('{SCHEMA}.alert_id_seq')"))
    alert = {
        "alert_id": alert_id,
        "raised_at": datetime.now(UTC).replace(tzinfo=None),  # bookkeeping time, not a business date
        "kind": kind,
        "subject": subject,
        "message": message[:2000],
        "retrain": retrain,
    }
    alert["webhook_status"] = _post(settings.alert_webhook_url, alert)
    with warehouse.transaction() as conn:
        conn.append(ALERTS, pd.DataFrame([alert]))
    return alert_id


def retrain_alerts_after(warehouse: Warehouse, alert_id: int) -> pd.DataFrame:
    """Alerts asking for a retrain raised after `alert_id`, oldest first."""
    with warehouse.transaction() as conn:
        ensure_alerts_table(conn)
        return conn.query(
            f"SELECT alert_id, kind, subject FROM {ALERTS} WHERE retrain AND alert_id > ? ORDER BY alert_id",  # noqa: S608 -- ALERTS is a module constant
            (alert_id,),
        )
