"""``connectx simulator``: every option explained; a bad configuration refused before starting; the
real command serving on a port with a YAML config, sending signed webhooks, and keeping its
state in a JSON file across restarts."""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from typer.testing import CliRunner

from connectx.cli import app
from connectx.simulator.cli import simulator
from tests.simulator.support import receiver
from tests.support.served import free_port

CONNECTX = str(Path(sys.executable).with_name("connectx"))


def test_help_explains_every_option() -> None:
    result = CliRunner().invoke(app, ["simulator", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "customer-phone page" in result.output
    for name, param in inspect.signature(simulator).parameters.items():
        option = param.default
        assert option.help, f"--{name} has no help"
        flag = option.param_decls[0] if option.param_decls else "--" + name.replace("_", "-")
        assert flag.split("/")[0] in result.output, flag
    assert "(default: 8025)" in result.output and "(default: v25.0)" in result.output


def test_a_bad_configuration_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["simulator", "--throughput", "2000"])
    assert result.exit_code == 2
    assert "throughput" in result.output and "1000" in result.output
    config = tmp_path / "sim.yaml"
    config.write_text("numbers:\n  - phone_number_id: not-digits\n")
    result = CliRunner().invoke(app, ["simulator", "--config", str(config)])
    assert result.exit_code == 2 and "phone_number_id" in result.output


async def wait_up(base: str, proc: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(1200):  # importing the CLI takes seconds on a busy machine
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read().decode() if proc.stderr else "exited")
            try:
                if (await client.get(f"{base}/_sim/state")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("the simulator did not start")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def test_the_real_command_with_a_yaml_config_and_a_state_file(tmp_path: Path) -> None:
    config = tmp_path / "sim.yaml"
    config.write_text(
        """
graph_version: v25.0
apps:
  - app_id: "400000000000001"
    app_secret: yaml-secret
    verify_token: yaml-verify
numbers:
  - phone_number_id: "500000000000001"
    display_phone_number: "+15550109999"
    waba_id: "600000000000001"
    access_token: yaml-token
    throughput: 200
customers:
  - wa_id: "16505550123"
    name: Dana
"""
    )
    state = tmp_path / "state.json"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with receiver() as rec:
        cmd = [
            CONNECTX,
            "simulator",
            "--config",
            str(config),
            "--port",
            str(port),
            "--callback-url",
            rec.url,
            "--state-file",
            str(state),
            "--log-level",
            "warning",
        ]
        env = {**os.environ, "COLUMNS": "200"}
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        try:
            await wait_up(base, proc)
            async with httpx.AsyncClient(base_url=base) as client:
                info = (await client.get("/_sim/state")).json()
                assert info["numbers"][0]["throughput"] == 200
                assert [c["name"] for c in info["customers"]] == ["Dana"]
                r = await client.post(
                    "/_sim/customers/16505550123/messages",
                    json={"type": "text", "text": "from the real process"},
                )
                assert r.status_code == 201
                [hook] = await rec.wait_for(1)
                assert hook.signature_valid("yaml-secret")
                r = await client.post(
                    "/v25.0/500000000000001/messages",
                    json={
                        "messaging_product": "whatsapp",
                        "to": "16505550123",
                        "text": {"body": "answer"},
                    },
                    headers={"Authorization": "Bearer yaml-token"},
                )
                assert r.status_code == 200, r.text
                r = await client.post(
                    "/_sim/customers", json={"wa_id": "16505550124", "name": "Eve"}
                )
                assert r.status_code == 201
        finally:
            stop(proc)
        out = proc.stdout.read().decode() if proc.stdout else ""
        assert f"on {base}" in out and "/phone" in out
        assert state.is_file()
        # a restart with the same state file remembers customers and the conversation
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        try:
            await wait_up(base, proc)
            async with httpx.AsyncClient(base_url=base) as client:
                names = [c["name"] for c in (await client.get("/_sim/state")).json()["customers"]]
                assert names == ["Dana", "Eve"]
                page = (await client.get("/phone/c1?number=500000000000001")).text
                assert "from the real process" in page and "answer" in page
                assert (await client.get("/_sim/sent")).json()["total"] == 1
        finally:
            stop(proc)
