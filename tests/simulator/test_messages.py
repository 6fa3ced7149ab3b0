"""POST /{version}/{phone-number-id}/messages: what Meta accepts, and each rule it enforces with
Meta's error code and error body."""

from __future__ import annotations

from typing import Any

import pytest

from tests.simulator.support import ANA, AUTH, BEN, PNID, Sim, V, error_of, running


async def test_text_inside_the_window_is_accepted_and_listed(sim: Sim) -> None:
    await sim.customer_says(ANA)
    r = await sim.send(
        {
            "to": "+" + ANA,
            "type": "text",
            "text": {"body": "Hi Ana"},
            "biz_opaque_callback_data": "order-7",
        }
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["messaging_product"] == "whatsapp"
    assert body["contacts"] == [{"input": "+" + ANA, "wa_id": ANA}]
    wamid = body["messages"][0]["id"]
    assert wamid.startswith("wamid.")
    sent = (await sim.client.get("/_sim/sent", params={"kind": "message"})).json()
    assert sent["total"] == 1
    assert sent["data"][0]["wamid"] == wamid
    assert sent["data"][0]["body"]["text"] == {"body": "Hi Ana"}
    stats = (await sim.client.get("/_sim/stats")).json()
    assert stats["accepted"] == 1 and stats["accepted_by_number"] == {PNID: 1}


async def test_a_user_id_recipient_is_answered_with_the_user_id(sim: Sim) -> None:
    carla = "BR.10000000000000000199"  # demo customer who hides her phone
    await sim.customer_says(carla)
    r = await sim.send({"recipient": carla, "type": "text", "text": {"body": "Olá"}})
    assert r.status_code == 200, r.text
    assert r.json()["contacts"] == [{"input": carla, "user_id": carla}]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-the-token"}, {"Authorization": "Basic abc"}],
    ids=["missing", "wrong", "not-bearer"],
)
async def test_a_bad_or_missing_token_is_190(sim: Sim, headers: dict[str, str]) -> None:
    await sim.customer_says(ANA)
    r = await sim.client.post(
        f"/{V}/{PNID}/messages",
        json={"messaging_product": "whatsapp", "to": ANA, "type": "text", "text": {"body": "x"}},
        headers=headers,
    )
    assert r.status_code == 401
    error = error_of(r)
    assert error["code"] == 190 and error["type"] == "OAuthException"
    assert (await sim.client.get("/_sim/sent")).json()["total"] == 0


async def test_tokens_are_per_number() -> None:
    second = {
        "phone_number_id": "100000000000002",
        "display_phone_number": "+15550100002",
        "waba_id": "200000000000002",
        "access_token": "token-of-number-2",
    }
    async with running({"numbers": [{}, second]}) as sim:
        await sim.customer_says(
            ANA, {"type": "text", "text": "hi", "phone_number_id": "100000000000002"}
        )
        r = await sim.text(ANA, pnid="100000000000002")  # the first number's token
        assert r.status_code == 401 and error_of(r)["code"] == 190
        r = await sim.text(ANA, pnid="100000000000002", token="token-of-number-2")
        assert r.status_code == 200, r.text


async def test_an_unknown_number_is_invalid_parameter(sim: Sim) -> None:
    r = await sim.text(ANA, pnid="999999999")
    assert r.status_code == 400
    assert error_of(r)["code"] == 100


async def test_the_24_hour_window(sim: Sim) -> None:
    # never wrote: closed
    r = await sim.text(BEN)
    assert r.status_code == 400
    error = error_of(r)
    assert error["code"] == 131047
    assert "24 hours" in error["error_data"]["details"]
    # wrote: open for 24 hours from the last inbound message
    said = await sim.customer_says(BEN)
    await sim.clock(advance_s=23 * 3600)
    assert (await sim.text(BEN)).status_code == 200
    await sim.clock(advance_s=3600 + 1)
    r = await sim.text(BEN)
    assert r.status_code == 400 and error_of(r)["code"] == 131047
    # reactions are free-form too; templates are what the business may send
    r = await sim.send(
        {"to": BEN, "type": "reaction", "reaction": {"message_id": said["wamid"], "emoji": "👍"}}
    )
    assert r.status_code == 400 and error_of(r)["code"] == 131047
    r = await sim.send(
        {
            "to": BEN,
            "type": "template",
            "template": {"name": "hello_world", "language": {"code": "en_US"}},
        }
    )
    assert r.status_code == 200, r.text
    assert r.json()["messages"][0]["message_status"] == "accepted"
    # the customer writes again: open again
    await sim.customer_says(BEN)
    assert (await sim.text(BEN)).status_code == 200


async def test_window_errors_can_come_as_a_failed_status_instead() -> None:
    async with running({"window_errors": "webhook", "statuses": {"delay_ms": 0}}) as sim:
        r = await sim.text(BEN)
        assert r.status_code == 200
        wamid = r.json()["messages"][0]["id"]
        await sim.settle()
        [status] = sim.receiver.all_statuses()
        assert status["id"] == wamid and status["status"] == "failed"
        assert status["errors"][0]["code"] == 131047


async def test_throughput_per_number_is_130429() -> None:
    async with running({"pair_rate": {"burst": 100}}, number={"throughput": 5}) as sim:
        await sim.clock(freeze=True)
        template = {
            "type": "template",
            "template": {"name": "hello_world", "language": {"code": "en_US"}},
        }
        for i in range(5):
            r = await sim.send({"to": f"1650555{i:04d}", **template})
            assert r.status_code == 200, r.text
        r = await sim.send({"to": "16505559999", **template})
        assert r.status_code == 400
        error = error_of(r)
        assert error["code"] == 130429 and error["message"] == "(#130429) Rate limit hit"
        await sim.clock(advance_s=0.21)  # 5/s: one more message's worth (not two)
        assert (await sim.send({"to": "16505559999", **template})).status_code == 200
        assert (await sim.send({"to": "16505559998", **template})).status_code == 400
        stats = (await sim.client.get("/_sim/stats")).json()
        assert stats["rejected"] == {"130429": 2} and stats["accepted"] == 6


async def test_throughput_can_be_1000_per_second_but_no_more() -> None:
    async with running(
        number={"throughput": 1000}, overrides={"pair_rate": {"burst": 2000}}
    ) as sim:
        await sim.clock(freeze=True)
        await sim.customer_says(ANA)
        await sim.clock(advance_s=1)
        codes = [(await sim.text(ANA)).status_code for _ in range(1001)]
        assert codes.count(200) == 1000 and codes[-1] == 400
    with pytest.raises(ValueError, match="less than or equal to 1000"):
        async with running(number={"throughput": 1001}):
            pass


async def test_pair_rate_to_one_user_is_131056(sim: Sim) -> None:
    await sim.clock(freeze=True)
    await sim.customer_says(ANA)
    await sim.customer_says(BEN)
    for _ in range(5):  # the burst
        assert (await sim.text(ANA)).status_code == 200
    r = await sim.text(ANA)
    assert r.status_code == 400 and error_of(r)["code"] == 131056
    assert (await sim.text(BEN)).status_code == 200  # another user is not affected
    await sim.clock(advance_s=6)  # one message per 6 seconds
    assert (await sim.text(ANA)).status_code == 200
    r = await sim.text(ANA)
    assert r.status_code == 400 and error_of(r)["code"] == 131056


TEMPLATE_CASES: list[tuple[str, dict[str, Any], int, int]] = [
    ("unknown name", {"name": "no_such_template", "language": {"code": "en_US"}}, 404, 132001),
    ("unknown language", {"name": "hello_world", "language": {"code": "pt_BR"}}, 404, 132001),
    (
        "too few body params",
        {
            "name": "order_update",
            "language": {"code": "en_US"},
            "components": [
                {"type": "body", "parameters": [{"type": "text", "text": "Ana"}]},
                {
                    "type": "button",
                    "sub_type": "url",
                    "index": 0,
                    "parameters": [{"type": "text", "text": "A-1"}],
                },
            ],
        },
        400,
        132000,
    ),
    (
        "missing url button param",
        {
            "name": "order_update",
            "language": {"code": "en_US"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "Ana"},
                        {"type": "text", "text": "A-1"},
                    ],
                },
            ],
        },
        400,
        132000,
    ),
    (
        "params for a template without any",
        {
            "name": "hello_world",
            "language": {"code": "en_US"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "x"}]}],
        },
        400,
        132000,
    ),
    (
        "named params with a wrong name",
        {
            "name": "winter_sale",
            "language": {"code": "en_US"},
            "components": [
                {
                    "type": "header",
                    "parameters": [
                        {"type": "image", "image": {"link": "https://example.com/a.jpg"}}
                    ],
                },
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "parameter_name": "first_name", "text": "Ana"},
                        {"type": "text", "parameter_name": "percent", "text": "20%"},
                    ],
                },
            ],
        },
        400,
        132000,
    ),
    (
        "image header missing",
        {
            "name": "winter_sale",
            "language": {"code": "en_US"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "parameter_name": "first_name", "text": "Ana"},
                        {"type": "text", "parameter_name": "discount", "text": "20%"},
                    ],
                },
            ],
        },
        400,
        132000,
    ),
]


@pytest.mark.parametrize(
    ("case", "template", "status", "code"), TEMPLATE_CASES, ids=[c[0] for c in TEMPLATE_CASES]
)
async def test_template_errors(
    sim: Sim, case: str, template: dict[str, Any], status: int, code: int
) -> None:
    r = await sim.send({"to": ANA, "type": "template", "template": template})
    assert r.status_code == status, r.text
    assert error_of(r)["code"] == code


async def test_templates_with_the_right_parameters_are_accepted(sim: Sim) -> None:
    r = await sim.send(
        {
            "to": ANA,
            "type": "template",
            "template": {
                "name": "order_update",
                "language": {"code": "en_US"},
                "components": [
                    {
                        "type": "body",
                        "parameters": [
                            {"type": "text", "text": "Ana"},
                            {"type": "text", "text": "A-1042"},
                        ],
                    },
                    {
                        "type": "button",
                        "sub_type": "url",
                        "index": "0",
                        "parameters": [{"type": "text", "text": "A-1042"}],
                    },
                ],
            },
        }
    )
    assert r.status_code == 200, r.text
    r = await sim.send(
        {
            "to": ANA,
            "type": "template",
            "template": {
                "name": "winter_sale",
                "language": {"code": "en_US"},
                "components": [
                    {
                        "type": "header",
                        "parameters": [
                            {"type": "image", "image": {"link": "https://example.com/a.jpg"}}
                        ],
                    },
                    {
                        "type": "body",
                        "parameters": [
                            {"type": "text", "parameter_name": "discount", "text": "20%"},
                            {"type": "text", "parameter_name": "first_name", "text": "Ana"},
                        ],
                    },
                ],
            },
        }
    )
    assert r.status_code == 200, r.text
    chat = (await sim.client.get("/phone/c1/thread")).text
    assert "Hi Ana, your order A-1042 is on its way." in chat


@pytest.mark.parametrize("status", ["PENDING", "REJECTED"])
async def test_an_unapproved_template_is_132001(sim: Sim, status: str) -> None:
    r = await sim.client.post(
        "/_sim/templates/200000000000001/hello_world/status", json={"status": status}
    )
    assert r.status_code == 200
    r = await sim.send(
        {
            "to": ANA,
            "type": "template",
            "template": {"name": "hello_world", "language": {"code": "en_US"}},
        }
    )
    assert r.status_code == 404 and error_of(r)["code"] == 132001


@pytest.mark.parametrize(("status", "code"), [("PAUSED", 132015), ("DISABLED", 132016)])
async def test_paused_and_disabled_templates(sim: Sim, status: str, code: int) -> None:
    await sim.client.post(
        "/_sim/templates/200000000000001/hello_world/status", json={"status": status}
    )
    r = await sim.send(
        {
            "to": ANA,
            "type": "template",
            "template": {"name": "hello_world", "language": {"code": "en_US"}},
        }
    )
    assert r.status_code == 400 and error_of(r)["code"] == code


def _buttons(n: int, title_len: int = 5) -> dict[str, Any]:
    return {
        "type": "button",
        "body": {"text": "Pick one"},
        "action": {
            "buttons": [
                {
                    "type": "reply",
                    "reply": {"id": f"b{i}", "title": (f"T{i}" * title_len)[:title_len]},
                }
                for i in range(n)
            ]
        },
    }


def _list(
    rows: list[int],
    *,
    title: str = "Row",
    description: str = "",
    button: str = "Open",
) -> dict[str, Any]:
    sections = []
    for s, count in enumerate(rows):
        section: dict[str, Any] = {"title": f"S{s}", "rows": []}
        for r in range(count):
            row = {"id": f"r{s}-{r}", "title": title}
            if description:
                row["description"] = description
            section["rows"].append(row)
        sections.append(section)
    return {
        "type": "list",
        "body": {"text": "Choose"},
        "action": {"button": button, "sections": sections},
    }


LIMIT_CASES: list[tuple[str, dict[str, Any]]] = [
    ("text over 4096", {"type": "text", "text": {"body": "x" * 4097}}),
    ("empty text", {"type": "text", "text": {"body": ""}}),
    ("4 reply buttons", {"type": "interactive", "interactive": _buttons(4)}),
    ("button title over 20", {"type": "interactive", "interactive": _buttons(2, 21)}),
    (
        "duplicate button ids",
        {
            "type": "interactive",
            "interactive": {
                "type": "button",
                "body": {"text": "x"},
                "action": {
                    "buttons": [
                        {"type": "reply", "reply": {"id": "same", "title": "A"}},
                        {"type": "reply", "reply": {"id": "same", "title": "B"}},
                    ]
                },
            },
        },
    ),
    ("11 list rows", {"type": "interactive", "interactive": _list([6, 5])}),
    ("11 list sections", {"type": "interactive", "interactive": _list([1] * 11)}),
    ("row title over 24", {"type": "interactive", "interactive": _list([1], title="x" * 25)}),
    (
        "row description over 72",
        {"type": "interactive", "interactive": _list([1], description="x" * 73)},
    ),
    ("list button over 20", {"type": "interactive", "interactive": _list([1], button="x" * 21)}),
    (
        "interactive body over 1024",
        {"type": "interactive", "interactive": {**_buttons(1), "body": {"text": "x" * 1025}}},
    ),
    (
        "caption over 1024",
        {"type": "image", "image": {"link": "https://example.com/a.jpg", "caption": "x" * 1025}},
    ),
    (
        "caption on audio",
        {"type": "audio", "audio": {"link": "https://example.com/a.ogg", "caption": "no"}},
    ),
    ("media with neither id nor link", {"type": "image", "image": {}}),
    ("unknown type", {"type": "hologram", "hologram": {}}),
    ("no recipient", {"to": "", "type": "text", "text": {"body": "x"}}),
    ("bad phone", {"to": "call me", "type": "text", "text": {"body": "x"}}),
    ("unknown media id", {"type": "image", "image": {"id": "123456"}}),
]


@pytest.mark.parametrize(("case", "body"), LIMIT_CASES, ids=[c[0] for c in LIMIT_CASES])
async def test_limits_are_invalid_parameter(sim: Sim, case: str, body: dict[str, Any]) -> None:
    await sim.customer_says(ANA)
    r = await sim.send({"to": ANA, **body})
    assert r.status_code == 400, r.text
    error = error_of(r)
    assert error["code"] == 100 and error["message"] == "(#100) Invalid parameter"
    assert (await sim.client.get("/_sim/sent")).json()["total"] == 0


async def test_limits_at_the_edge_are_accepted(sim: Sim) -> None:
    await sim.customer_says(ANA)
    for body in (
        {"type": "text", "text": {"body": "x" * 4096, "preview_url": True}},
        {"type": "interactive", "interactive": _buttons(3, 20)},
        {
            "type": "interactive",
            "interactive": _list([5, 5], title="x" * 24, description="d" * 72, button="b" * 20),
        },
        {"type": "image", "image": {"link": "https://example.com/a.jpg", "caption": "c" * 1024}},
        {"type": "location", "location": {"latitude": 38.7, "longitude": -9.1, "name": "Shop"}},
    ):
        await sim.clock(advance_s=6)  # keep under the pair rate
        r = await sim.send({"to": ANA, **body})
        assert r.status_code == 200, (body["type"], r.text)


async def test_missing_messaging_product_and_bad_json(sim: Sim) -> None:
    r = await sim.client.post(
        f"/{V}/{PNID}/messages", json={"to": ANA, "text": {"body": "x"}}, headers=AUTH
    )
    assert r.status_code == 400 and error_of(r)["code"] == 100
    r = await sim.client.post(f"/{V}/{PNID}/messages", content=b"{not json", headers=AUTH)
    assert r.status_code == 400 and error_of(r)["code"] == 100


async def test_mark_as_read_with_typing_indicator(sim: Sim) -> None:
    said = await sim.customer_says(ANA, {"type": "text", "text": "are you there?"})
    r = await sim.send(
        {"status": "read", "message_id": said["wamid"], "typing_indicator": {"type": "text"}}
    )
    assert r.status_code == 200 and r.json() == {"success": True}
    page = (await sim.client.get("/phone/c1/thread")).text
    assert "is typing" in page
    assert 'class="ticks read"' in page
    reads = (await sim.client.get("/_sim/sent", params={"kind": "read"})).json()["data"]
    assert reads[0]["wamid"] == said["wamid"]
    await sim.clock(advance_s=26)  # the indicator lasts up to 25 seconds
    assert "is typing" not in (await sim.client.get("/phone/c1/thread")).text
    r = await sim.send({"status": "read", "message_id": "wamid.unknown"})
    assert r.status_code == 400 and error_of(r)["code"] == 100


async def test_reaction_and_quoted_reply(sim: Sim) -> None:
    said = await sim.customer_says(ANA, {"type": "text", "text": "Is it in stock?"})
    r = await sim.send(
        {"to": ANA, "type": "reaction", "reaction": {"message_id": said["wamid"], "emoji": "👍"}}
    )
    assert r.status_code == 200, r.text
    r = await sim.send(
        {
            "to": ANA,
            "type": "text",
            "text": {"body": "Yes"},
            "context": {"message_id": said["wamid"]},
        }
    )
    assert r.status_code == 200, r.text
    page = (await sim.client.get("/phone/c1/thread")).text
    assert "👍" in page and 'class="quote"' in page


async def test_injected_faults(sim: Sim) -> None:
    await sim.customer_says(ANA)
    r = await sim.client.post("/_sim/faults", json={"code": 131056, "count": 2})
    assert r.status_code == 201
    assert error_of(await sim.text(ANA))["code"] == 131056
    assert error_of(await sim.text(ANA))["code"] == 131056
    assert (await sim.text(ANA)).status_code == 200
    await sim.client.post("/_sim/faults", json={"http_status": 503})
    r = await sim.text(ANA)
    assert r.status_code == 503 and error_of(r)["code"] == 131016
    await sim.client.post("/_sim/faults", json={"http_status": 500})
    r = await sim.text(ANA)
    assert r.status_code == 500 and error_of(r)["code"] == 131000
    await sim.client.post("/_sim/faults", json={"code": 190, "count": -1, "to": BEN})
    await sim.customer_says(BEN)
    assert error_of(await sim.text(BEN))["code"] == 190
    assert error_of(await sim.text(BEN))["code"] == 190  # until removed
    await sim.clock(advance_s=6)
    assert (await sim.text(ANA)).status_code == 200
    await sim.client.delete("/_sim/faults")
    assert (await sim.text(BEN)).status_code == 200


async def test_a_rotated_token_invalidates_the_old_one(sim: Sim) -> None:
    await sim.customer_says(ANA)
    r = await sim.client.patch(f"/_sim/numbers/{PNID}", json={"access_token": "fresh-token"})
    assert r.status_code == 200
    assert error_of(await sim.text(ANA))["code"] == 190
    assert (await sim.text(ANA, token="fresh-token")).status_code == 200


async def test_inbound_messages_count_against_throughput() -> None:
    async with running({"pair_rate": {"burst": 100}}, number={"throughput": 2}) as sim:
        await sim.clock(freeze=True)
        await sim.customer_says(ANA)
        await sim.customer_says(BEN)  # two inbound messages: the second's worth is used up
        r = await sim.text(ANA)
        assert r.status_code == 400 and error_of(r)["code"] == 130429
        await sim.customer_says(ANA)  # never refused, even with no capacity left
        await sim.clock(advance_s=0.5)
        assert (await sim.text(ANA)).status_code == 200
