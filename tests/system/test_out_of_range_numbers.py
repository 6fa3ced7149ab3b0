"""An id or number too big for a database integer is bad input (422 naming the problem), never a
500: SQLite's driver and asyncpg both refuse to bind it."""

from __future__ import annotations

from typing import Any

from tests.workspaces.helpers import owner_of

BIG = "99999999999999999999999"


async def test_ids_out_of_the_integer_range_are_a_422(app: Any) -> None:
    owner, _ = await owner_of(app)
    for url in (
        f"/api/v1/contacts/{BIG}",
        f"/api/v1/conversations/{BIG}/messages",
        f"/api/v1/conversations?contact={BIG}",
    ):
        r = await owner.get(url)
        assert r.status_code == 422, (url, r.status_code, r.text)
        problem = r.json()
        assert problem["type"].endswith("/number_out_of_range"), problem
        assert "out of range" in problem["detail"]
    r = await owner.post("/api/v1/workspace/legal-holds", json={"contact_id": int(BIG)})
    assert r.status_code == 422, r.text
    # A browser asking for a page gets the error page, not a 500.
    r = await owner.get(f"/inbox/c/{BIG}", headers={"Accept": "text/html"})
    assert r.status_code == 422, r.text[:200]
