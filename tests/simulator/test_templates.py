"""GET/POST/DELETE /{waba-id}/message_templates: cursor pagination, creation with review, deletion
by name, and the template status webhook."""

from __future__ import annotations

from typing import Any

from tests.simulator.support import ANA, AUTH, WABA, Sim, V, error_of, running

URL = f"/{V}/{WABA}/message_templates"


def new_template(name: str, category: str = "UTILITY", language: str = "en_US") -> dict[str, Any]:
    return {
        "name": name,
        "language": language,
        "category": category,
        "components": [
            {
                "type": "BODY",
                "text": "Hi {{1}}, code {{2}}.",
                "example": {"body_text": [["Ana", "42"]]},
            }
        ],
    }


async def test_pagination_with_cursors() -> None:
    async with running({"demo_data": False}) as sim:
        names = [f"notice_{i:02d}" for i in range(7)]
        for name in names:
            r = await sim.client.post(URL, json=new_template(name), headers=AUTH)
            assert r.status_code == 200, r.text
            assert r.json()["status"] == "APPROVED" and r.json()["category"] == "UTILITY"
        seen: list[str] = []
        pages = 0
        r = await sim.client.get(URL, params={"limit": 3}, headers=AUTH)
        while True:
            assert r.status_code == 200, r.text
            body = r.json()
            pages += 1
            seen += [t["name"] for t in body["data"]]
            assert set(body["paging"]["cursors"]) == {"before", "after"}
            if "next" not in body["paging"]:
                break
            # the next link is a full URL that keeps the query
            assert "limit=3" in body["paging"]["next"]
            r = await sim.client.get(body["paging"]["next"], headers=AUTH)
        assert seen == names and pages == 3
        # and back: the page before the last one
        last = r.json()
        r = await sim.client.get(
            URL, params={"limit": 3, "before": last["paging"]["cursors"]["before"]}, headers=AUTH
        )
        assert [t["name"] for t in r.json()["data"]] == names[3:6]
        assert "previous" not in (await sim.client.get(URL, headers=AUTH)).json()["paging"]
        r = await sim.client.get(URL, params={"after": "garbage!"}, headers=AUTH)
        assert r.status_code == 400 and error_of(r)["code"] == 100


async def test_listing_filters_and_fields(sim: Sim) -> None:
    r = await sim.client.get(URL, params={"category": "MARKETING"}, headers=AUTH)
    assert [t["name"] for t in r.json()["data"]] == ["winter_sale"]
    r = await sim.client.get(URL, params={"name": "order", "fields": "name,status"}, headers=AUTH)
    [only] = r.json()["data"]
    assert set(only) == {"id", "name", "status"} and only["name"] == "order_update"
    r = await sim.client.get(URL)
    assert r.status_code == 401 and error_of(r)["code"] == 190


async def test_creation_rules(sim: Sim) -> None:
    bad = [
        {**new_template("x"), "name": "Has Spaces"},
        {**new_template("y"), "category": "PROMO"},
        {**new_template("z"), "components": [{"type": "HEADER", "format": "TEXT", "text": "h"}]},
        {**new_template("w"), "language": ""},
    ]
    for body in bad:
        r = await sim.client.post(URL, json=body, headers=AUTH)
        assert r.status_code == 400 and error_of(r)["code"] == 100, body
    r = await sim.client.post(URL, json=new_template("hello_world"), headers=AUTH)
    assert r.status_code == 400 and error_of(r)["code"] == 100  # same name and language
    r = await sim.client.post(URL, json=new_template("hello_world", language="pt_BR"), headers=AUTH)
    assert r.status_code == 200


async def test_review_webhooks_and_sending_after_approval() -> None:
    async with running({"template_review": "pending"}) as sim:
        r = await sim.client.post(URL, json=new_template("otp_code"), headers=AUTH)
        assert r.json()["status"] == "PENDING"
        send = {
            "to": ANA,
            "type": "template",
            "template": {
                "name": "otp_code",
                "language": {"code": "en_US"},
                "components": [
                    {
                        "type": "body",
                        "parameters": [
                            {"type": "text", "text": "Ana"},
                            {"type": "text", "text": "42"},
                        ],
                    }
                ],
            },
        }
        r = await sim.send(send)
        assert r.status_code == 404 and error_of(r)["code"] == 132001
        r = await sim.client.post(
            f"/_sim/templates/{WABA}/otp_code/status", json={"status": "APPROVED"}
        )
        assert r.status_code == 200 and r.json()["status"] == "APPROVED"
        [hook] = await sim.receiver.wait_for(1)
        assert hook.signature_valid()
        [change] = hook.changes()
        assert change["field"] == "message_template_status_update"
        assert change["value"]["event"] == "APPROVED"
        assert change["value"]["message_template_name"] == "otp_code"
        assert hook.json["entry"][0]["id"] == WABA
        assert (await sim.send(send)).status_code == 200


async def test_rejected_on_creation_sends_the_reason() -> None:
    async with running({"template_review": "reject"}) as sim:
        r = await sim.client.post(URL, json=new_template("promo_blast", "MARKETING"), headers=AUTH)
        assert r.json()["status"] == "REJECTED"
        [hook] = await sim.receiver.wait_for(1)
        value = hook.changes()[0]["value"]
        assert value["event"] == "REJECTED" and value["reason"] == "INVALID_FORMAT"


async def test_delete_by_name(sim: Sim) -> None:
    await sim.client.post(URL, json=new_template("hello_world", language="pt_BR"), headers=AUTH)
    r = await sim.client.delete(URL, params={"name": "hello_world"}, headers=AUTH)
    assert r.status_code == 200 and r.json() == {"success": True}
    names = [t["name"] for t in (await sim.client.get(URL, headers=AUTH)).json()["data"]]
    assert "hello_world" not in names and names  # every language of it, nothing else
    r = await sim.client.delete(URL, params={"name": "hello_world"}, headers=AUTH)
    assert r.status_code == 400 and error_of(r)["code"] == 100
    r = await sim.send(
        {
            "to": ANA,
            "type": "template",
            "template": {"name": "hello_world", "language": {"code": "en_US"}},
        }
    )
    assert r.status_code == 404 and error_of(r)["code"] == 132001
