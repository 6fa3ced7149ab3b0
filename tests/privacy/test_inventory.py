"""Data inventory as code: every persisted column is declared, and migrations match the models."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import connectx.models  # noqa: F401
from connectx.db.base import Base
from connectx.db.engine import get_engine
from connectx.kit.inventory import Basis, Purpose, Retention, declaration_of


def test_every_model_column_declares_category_purpose_basis_retention() -> None:
    missing = [
        f"{table.name}.{col.name}"
        for table in Base.metadata.tables.values()
        for col in table.columns
        if declaration_of(col) is None
    ]
    assert missing == [], f"columns without a data-inventory declaration: {missing}"
    for table in Base.metadata.tables.values():
        for col in table.columns:
            decl = declaration_of(col)
            assert decl is not None
            assert decl.category and "." in decl.category, f"{table.name}.{col.name}"
            assert isinstance(decl.purpose, Purpose)
            assert isinstance(decl.basis, Basis)
            assert isinstance(decl.retention, Retention)


def test_personal_free_text_and_secrets_are_encrypted() -> None:
    """Names, phones, e-mail addresses and 2FA secrets of people are stored encrypted."""
    for table in Base.metadata.tables.values():
        for col in table.columns:
            decl = declaration_of(col)
            assert decl is not None
            if decl.category in {
                "user.name",
                "user.contact.phone",
                "user.contact.email",
                "user.contact.address",
            }:
                assert decl.encrypted and col.name.endswith("_enc"), f"{table.name}.{col.name}"


async def test_migrated_schema_matches_the_declared_models() -> None:
    """A column added by a migration but not declared in a model shows up as a difference."""

    def diff(sync_conn: Any) -> list[Any]:
        def apart(obj: Any, name: str | None, type_: str, reflected: bool, other: Any) -> bool:
            # SQLite: webhook_events is the events file's (tests/whatsapp/test_events_file.py)
            table = obj if type_ == "table" else getattr(obj, "table", None)
            return not (
                getattr(table, "name", None) == "webhook_events"
                and sync_conn.dialect.name == "sqlite"
            )

        ctx = MigrationContext.configure(
            sync_conn, opts={"compare_type": False, "include_object": apart}
        )
        return list(compare_metadata(ctx, Base.metadata))

    async with get_engine().connect() as conn:
        differences = await conn.run_sync(diff)
    assert differences == [], differences


def test_key_store_columns_are_declared_too() -> None:
    from connectx.models.crypto_key import KeyStoreBase

    assert KeyStoreBase.metadata.tables, "the key store has tables"
    for table in KeyStoreBase.metadata.tables.values():
        assert table.name not in Base.metadata.tables  # apart from the data database
        for col in table.columns:
            decl = declaration_of(col)
            assert decl is not None, f"{table.name}.{col.name}"


def test_no_table_can_hold_a_card_number_or_cvv() -> None:
    """Card data never reaches ConnectX (policy §2.1 payment information goes to the payment
    processor; we keep its tokens only)."""
    import re

    from connectx.models.crypto_key import KeyStoreBase

    suspicious = re.compile(r"(?i)(^|_)(card|pan|cvv|cvc|cvv2|ccn|cc_?number|security_code)(_|$)")
    for metadata in (Base.metadata, KeyStoreBase.metadata):
        for table in metadata.tables.values():
            for col in table.columns:
                decl = declaration_of(col)
                assert decl is not None
                where = f"{table.name}.{col.name}"
                assert not suspicious.search(col.name), f"{where} looks like card data"
                if decl.category.startswith("user.financial"):
                    assert decl.category == "user.financial.payment_token", where
