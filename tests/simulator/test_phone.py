"""The customer phone page: renders under a strict CSP without inline script or style; a person
sending from it produces a signed webhook; the business's replies and read receipts show up;
tapping a reply button sends the interactive reply."""

from __future__ import annotations

import re

from tests.simulator.support import ANA, Sim


def assert_no_inline_code(html: str) -> None:
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag, tag  # scripts only from files
    assert not re.search(r"<script\b[^>]*>[^<\s]", html)
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"\son[a-z]+=", html)  # no onclick= etc.


async def test_index_lists_customers_under_a_strict_csp(sim: Sim) -> None:
    r = await sim.client.get("/phone")
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "Ana Silva" in r.text and "Ben Carter" in r.text
    assert "Carla Quiet" in r.text and "phone hidden" in r.text
    assert_no_inline_code(r.text)
    css = await sim.client.get("/_static/phone.css")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]
    assert (await sim.client.get("/")).headers["location"] == "/phone"


async def test_sending_from_the_page_makes_a_signed_webhook(sim: Sim) -> None:
    r = await sim.client.get("/phone/c1")
    assert r.status_code == 200
    assert "ConnectX Demo" in r.text and "you are Ana Silva" in r.text
    assert_no_inline_code(r.text)
    r = await sim.client.post("/phone/c1/send", data={"text": "Where is my parcel?"})
    assert r.status_code == 303 and r.headers["location"].startswith("/phone/c1?")
    [hook] = await sim.receiver.wait_for(1)
    assert hook.signature_valid()
    [message] = hook.messages()
    assert message["from"] == ANA and message["text"] == {"body": "Where is my parcel?"}
    page = (await sim.client.get("/phone/c1")).text
    assert "Where is my parcel?" in page
    assert "Customer-service window open" in page


async def test_htmx_posts_get_the_chat_fragment(sim: Sim) -> None:
    r = await sim.client.post("/phone/c2/send", data={"text": "hi"}, headers={"HX-Request": "true"})
    assert r.status_code == 200
    assert r.text.lstrip().startswith('<div id="chat">') and "hi" in r.text
    r = await sim.client.post("/phone/c2/send", data={"text": "  "}, headers={"HX-Request": "true"})
    assert "Type a message or choose a file." in r.text
    assert len(await sim.receiver.wait_for(1)) == 1


async def test_a_photo_from_the_page(sim: Sim) -> None:
    photo = b"\x89PNG\r\n\x1a\n" + b"x" * 64
    r = await sim.client.post(
        "/phone/c1/send",
        data={"text": "look"},
        files={"file": ("box.png", photo, "image/png")},
    )
    assert r.status_code == 303
    [hook] = await sim.receiver.wait_for(1)
    [message] = hook.messages()
    assert message["type"] == "image" and message["image"]["caption"] == "look"
    media = (await sim.client.get(f"/_sim/media/{message['image']['id']}")).content
    assert media == photo


async def test_replies_read_receipts_and_buttons(sim: Sim) -> None:
    said = await sim.customer_says(ANA, {"type": "text", "text": "Which colour?"})
    r = await sim.send({"status": "read", "message_id": said["wamid"]})
    assert r.status_code == 200
    r = await sim.send(
        {
            "to": ANA,
            "type": "interactive",
            "interactive": {
                "type": "button",
                "body": {"text": "Pick a colour"},
                "action": {
                    "buttons": [
                        {"type": "reply", "reply": {"id": "blue", "title": "Blue"}},
                        {"type": "reply", "reply": {"id": "red", "title": "Red"}},
                    ]
                },
            },
        }
    )
    business = r.json()["messages"][0]["id"]
    thread = await sim.client.get("/phone/c1/thread")
    assert thread.status_code == 200
    assert 'hx-trigger="every 1s"' in thread.text  # it keeps polling itself
    assert "Pick a colour" in thread.text and 'class="ticks read"' in thread.text
    assert_no_inline_code(thread.text)
    form = re.search(r'<form method="post" action="/phone/c1/reply".*?</form>', thread.text, re.S)
    assert form is not None
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', form.group(0)))
    assert fields["id"] == "blue" and fields["context"] == business
    r = await sim.client.post("/phone/c1/reply", data=fields)
    assert r.status_code == 303
    hooks = await sim.receiver.wait_for(2)
    reply = next(m for h in hooks for m in h.messages() if m["type"] == "interactive")
    assert reply["interactive"] == {
        "type": "button_reply",
        "button_reply": {"id": "blue", "title": "Blue"},
    }
    assert reply["context"]["id"] == business


async def test_template_quick_replies_and_reactions(sim: Sim) -> None:
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
                            {"type": "text", "text": "A-7"},
                        ],
                    },
                    {
                        "type": "button",
                        "sub_type": "url",
                        "index": 0,
                        "parameters": [{"type": "text", "text": "A-7"}],
                    },
                    {
                        "type": "button",
                        "sub_type": "quick_reply",
                        "index": 1,
                        "parameters": [{"type": "payload", "payload": "TALK-A-7"}],
                    },
                ],
            },
        }
    )
    assert r.status_code == 200, r.text
    wamid = r.json()["messages"][0]["id"]
    thread = (await sim.client.get("/phone/c1/thread")).text
    assert "Hi Ana, your order A-7 is on its way." in thread
    r = await sim.client.post(
        "/phone/c1/reply",
        data={"kind": "button", "id": "TALK-A-7", "title": "Talk to us", "context": wamid},
    )
    r = await sim.client.post("/phone/c1/react", data={"message_id": wamid, "emoji": "👍"})
    hooks = await sim.receiver.wait_for(2)
    button = hooks[0].messages()[0]
    assert button["type"] == "button"
    assert button["button"] == {"payload": "TALK-A-7", "text": "Talk to us"}
    reaction = hooks[1].messages()[0]
    assert reaction["reaction"] == {"message_id": wamid, "emoji": "👍"}


async def test_adding_a_customer_and_stopping_marketing(sim: Sim) -> None:
    r = await sim.client.post(
        "/phone/customers", data={"wa_id": "+351 912 000 111", "name": "Rita"}
    )
    assert r.status_code == 303
    page = await sim.client.get(r.headers["location"])
    assert "you are Rita" in page.text
    key = r.headers["location"].split("/")[2].split("?")[0]
    r = await sim.client.post(f"/phone/{key}/preferences", data={"value": "stop"})
    assert r.status_code == 303
    [hook] = await sim.receiver.wait_for(1)
    assert hook.changes()[0]["field"] == "user_preferences"
    assert "Resume marketing messages" in (await sim.client.get(f"/phone/{key}")).text
    r = await sim.client.post("/phone/customers", data={"wa_id": "12", "name": "Bad"})
    assert r.status_code == 303 and "error=" in r.headers["location"]


async def test_the_page_with_htmx_installed(sim: Sim) -> None:
    """When the platform's front-end assets are installed, htmx is served from them."""
    from connectx.simulator.app import VENDOR

    page = (await sim.client.get("/phone/c1")).text
    if (VENDOR / "htmx.min.js").is_file():
        assert '<script src="/_static/vendor/htmx.min.js" defer></script>' in page
        r = await sim.client.get("/_static/vendor/htmx.min.js")
        assert r.status_code == 200 and "htmx" in r.text[:2000]
    else:
        assert "<script" not in page


async def test_names_are_escaped_and_unknown_customers_are_404(sim: Sim) -> None:
    r = await sim.client.post(
        "/phone/customers", data={"wa_id": "16505550188", "name": "<b>Rita</b>"}
    )
    page = (await sim.client.get(r.headers["location"])).text
    assert "&lt;b&gt;Rita&lt;/b&gt;" in page and "<b>Rita</b>" not in page
    r = await sim.client.post("/phone/c999/send", data={"text": "hi"})
    assert r.status_code == 404
    assert (await sim.client.get("/phone/c999")).headers["location"] == "/phone"


async def test_links_in_the_business_text_can_be_opened(sim: Sim) -> None:
    # As on WhatsApp: a data-access request's download link reached the phone as plain text,
    # and the thread, redrawn every second, dropped any selection made to copy it.
    said = await sim.customer_says(ANA, {"type": "text", "text": "My data please"})
    assert said["wamid"]
    link = "http://127.0.0.1:8000/privacy/exports/download?token=abc&x=1"
    r = await sim.send({"to": ANA, "type": "text", "text": {"body": f"Here: {link}. <b>x</b>"}})
    assert r.status_code == 200, r.text
    thread = (await sim.client.get("/phone/c1/thread")).text
    href = link.replace("&", "&amp;")
    assert f'<a href="{href}" target="_blank" rel="noopener noreferrer nofollow ugc">' in thread
    assert "&lt;b&gt;x&lt;/b&gt;" in thread  # the rest is still escaped
