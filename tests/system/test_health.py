from __future__ import annotations

from typing import Any


async def test_healthz(client: Any) -> None:
    resp = await client.get("/healthz")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok"}
    assert resp.headers["x-request-id"]


async def test_readyz_reports_database_and_migrations(client: Any) -> None:
    resp = await client.get("/readyz")
    assert resp.status_code == 200, resp.text
    assert resp.json()["checks"] == {"database": "ok", "migrations": "ok"}


async def test_metrics_are_prometheus_text(client: Any) -> None:
    await client.get("/healthz")
    resp = await client.get("/metrics")
    assert resp.status_code == 200
    assert 'connectx_http_requests_total{method="GET",route="/healthz",status="200"}' in resp.text


async def test_openapi_and_docs(client: Any) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert spec["info"]["title"] == "ConnectX"
    assert "/healthz" in spec["paths"]
    assert (await client.get("/docs")).status_code == 200


async def test_unknown_route_is_problem_json(client: Any) -> None:
    resp = await client.get("/api/v1/nothing-here")
    assert resp.status_code == 404
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["status"] == 404


async def test_security_headers(client: Any) -> None:
    resp = await client.get("/healthz")
    assert "frame-ancestors 'none'" in resp.headers["content-security-policy"]
    assert resp.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert resp.headers["x-content-type-options"] == "nosniff"
