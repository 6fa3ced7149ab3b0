from __future__ import annotations

import typer

privacy_app = typer.Typer(help="Privacy: record of processing, requests.", no_args_is_help=True)
keys_app = typer.Typer(help="Encryption keys.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
