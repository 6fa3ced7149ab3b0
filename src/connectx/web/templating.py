"""Jinja2 templates: each domain keeps its own under ``<domain>/templates``."""

from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape

PACKAGE = Path(__file__).resolve().parents[1]


def _template_dirs() -> list[str]:
    return [str(p) for p in sorted(PACKAGE.glob("*/templates")) if p.is_dir()]


env = Environment(
    loader=FileSystemLoader(_template_dirs()),
    autoescape=select_autoescape(["html", "xml"]),
    enable_async=False,
)
templates = Jinja2Templates(env=env)
