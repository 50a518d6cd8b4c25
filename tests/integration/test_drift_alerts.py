"""The drift monitor on small hand-made marts, both targets: a shifted interaction mix fails its check,
writes an alert that asks for a retrain (and posts it to the webhook), and the retrain sensor picks it up;
an unchanged mix passes."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from optimum.settings import Settings
from orchestration.alerts import ALERTS
from orchestration.assets.monitoring import build_monitoring_assets
from orchestration.automation import retrain_on_evidence
from orchestration.warehouse import Warehouse


def _marts(warehouse: Warehouse, shifted: bool) -> None:
    rng = np.random.default_rng(0)
    days = pd.date_range("2024-01-01", periods=210, freq="D")
    late = days >= days[-28]
    kinds = []
    for is_late in late:
        p = [0.2, 0.1, 0.3, 0.4] if shifted and is_late else [0.7, 0.1, 0.15, 0.05]
        kinds.append(rng.choice(["view", "like", "cart", "purchase"], size=20, p=p))
    events = pd.DataFrame({"interaction_type": np.concatenate(kinds), "event_date": np.repeat(days, 20)})
    sales = pd.DataFrame(
        {
            "product_id": np.tile(["P1", "P2"], len(days)),
            "sales_date": np.repeat(days, 2),
            "quantity": 3,
            "avg_unit_price": np.tile([10.0, 20.0], len(days)),
        }
    )
    warehouse.replace_table("marts.fct_interactions", events)
    warehouse.replace_table("marts.fct_sales_daily", sales)
    warehouse.replace_table("marts.dim_products", pd.DataFrame({"product_id": ["P1", "P2"], "category": ["a", "b"]}))


class _Webhook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Webhook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    server = HTTPServer(("127.0.0.1", 0), _Webhook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Webhook.received = []
    yield f"http://127.0.0.1:{server.server_port}/alerts"
    server.shutdown()


@pytest.mark.parametrize("target", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_drift_fails_the_check_alerts_and_asks_for_a_retrain(target, tmp_path, request, webhook):
    settings = Settings(home=tmp_path, alert_webhook_url=webhook)
    if target == "postgres":
        settings = settings.model_copy(update={"target": "postgres", "pg_dsn": request.getfixturevalue("pg_dsn")})
    warehouse = Warehouse.from_settings(settings)
    drift = [a for a in build_monitoring_assets(settings) if a.key.path[-1] == "data_drift"]
    resources = {"settings": settings, "warehouse": warehouse}

    def evaluate(shifted: bool) -> bool:
        _marts(warehouse, shifted)
        result = dg.materialize(drift, resources=resources)
        (evaluation,) = result.get_asset_check_evaluations()
        return evaluation.passed

    assert evaluate(shifted=False)
    sensor = dg.build_sensor_context(resources=resources)
    assert isinstance(retrain_on_evidence(sensor), dg.SkipReason)

    assert not evaluate(shifted=True)
    table = warehouse.query("SELECT * FROM monitoring.data_drift").set_index("feature")
    assert table.loc["interaction_mix", "jensen_shannon"] > settings.drift_max_distance
    assert table.loc["prices", "jensen_shannon"] == pytest.approx(0.0, abs=1e-9)  # prices did not move
    alerts = warehouse.query(f"SELECT * FROM {ALERTS}")
    assert alerts["retrain"].tolist() == [True] and alerts["webhook_status"].tolist() == ["HTTP 204"]
    assert _Webhook.received[0]["kind"] == "check_failed:no_data_drift"
    assert isinstance(retrain_on_evidence(sensor), dg.RunRequest)
