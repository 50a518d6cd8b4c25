"""serving/auth.py and serving/limits.py: tokens stored as hashes (file and PostgreSQL), scopes, buckets."""

from __future__ import annotations

import json
import stat

import pytest

from serving.auth import (
    Authenticator,
    FileTokenStore,
    PostgresTokenStore,
    TokenExists,
    create_token,
    token_hash,
)
from serving.limits import RateLimiter, retry_after_header


def test_file_store_keeps_only_the_hash(tmp_path):
    store = FileTokenStore(tmp_path / "api_tokens.json")
    token = create_token(store, "shop-frontend", "predict")
    text = store.path.read_text()
    assert token not in text and token_hash(token) in text
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert json.loads(text)["tokens"][0] | {"created_at": None} == {
        "name": "shop-frontend",
        "scope": "predict",
        "sha256": token_hash(token),
        "created_at": None,
    }
    with pytest.raises(TokenExists):
        create_token(store, "shop-frontend", "admin")
    with pytest.raises(ValueError, match="scope"):
        create_token(store, "other", "root")
    with pytest.raises(ValueError, match="name"):
        create_token(store, "white space", "predict")


def test_authenticator_scopes_and_reload(tmp_path):
    store = FileTokenStore(tmp_path / "api_tokens.json")
    predict = create_token(store, "app", "predict")
    auth = Authenticator(store, required=True)
    assert auth.principal(predict).allows("predict") and not auth.principal(predict).allows("admin")
    assert auth.principal("opt_not-a-token") is None
    admin = create_token(store, "ops", "admin")  # created while the service runs: the file changed
    principal = auth.principal(admin)
    assert principal.name == "ops" and principal.allows("predict") and principal.allows("interactions")


def test_postgres_store(pg_dsn):
    store = PostgresTokenStore(pg_dsn)
    token = create_token(store, "batch-job", "interactions")
    assert store.load() == {token_hash(token): Authenticator(store, True).principal(token)}
    with pytest.raises(TokenExists):
        create_token(store, "batch-job", "predict")


def test_token_bucket():
    limiter = RateLimiter(rate=2.0, burst=3)
    assert [limiter.retry_after("a", now=100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.retry_after("a", now=100.0)
    assert wait == pytest.approx(0.5) and retry_after_header(wait) == "1"
    assert limiter.retry_after("b", now=100.0) == 0.0  # buckets are per caller
    assert limiter.retry_after("a", now=100.5) == 0.0  # refilled at 2/s
    assert limiter.retry_after("a", now=100.5) > 0
