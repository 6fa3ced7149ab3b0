"""A JSON body the API cannot read gets a message saying what is wrong with it: pydantic's own
were "13: JSON decode error" (the character offset as the field) and "Input should be a valid
dictionary or object to extract fields from" for a body sent as text/plain or form data."""

from __future__ import annotations

from typing import Any

from tests.workspaces.helpers import owner_of


async def _problem(owner: Any, body: bytes, content_type: str) -> dict[str, Any]:
    r = await owner.post("/api/v1/labels", content=body, headers={"content-type": content_type})
    assert r.status_code == 422, r.text
    problem: dict[str, Any] = r.json()
    assert [e["field"] for e in problem["errors"]] == ["body"], r.text
    return problem


async def test_a_body_the_api_cannot_read_is_a_422_saying_why(app: Any) -> None:
    owner, _ = await owner_of(app)
    bad = await _problem(owner, b'{"name": "VIP",}', "application/json")
    assert bad["detail"] == (
        "body: is not valid JSON: Expecting property name enclosed in double quotes "
        "(at character 15)"
    )
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        bad = await _problem(owner, b'{"name": "VIP"}', content_type)
        assert "Content-Type: application/json" in bad["detail"], bad
        assert f"'{content_type}'" in bad["detail"], bad
    bad = await _problem(owner, b"[1]", "application/json")
    assert bad["detail"] == "body: should be a JSON object ({...})"
    bad = await _problem(owner, b"", "application/json")
    assert bad["detail"] == "body: is empty; send the JSON this call takes"
    # Field errors inside a readable body keep naming the field.
    r = await owner.post("/api/v1/labels", json={"name": 5})
    assert r.json()["errors"][0]["field"] == "name", r.text
    assert (await owner.get("/api/v1/labels")).json() == []
