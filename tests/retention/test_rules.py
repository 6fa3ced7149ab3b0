"""Every table whose retention class has a finite period has a retention rule (or a recorded
reason why not), and every rule agrees with the data inventory."""

from __future__ import annotations

import connectx.models  # noqa: F401
from connectx.db.base import Base
from connectx.kit.inventory import Retention, declaration_of
from connectx.privacy.retention_schedule import SCHEDULE
from connectx.retention.rules import EXEMPT, rules

# Classes whose period counts from closing an account or a workspace: those deletions belong to
# account and workspace closure (erasure), not to the daily run.
LIFETIME = {Retention.ACCOUNT_LIFETIME, Retention.WORKSPACE_LIFETIME, Retention.KEY_MATERIAL}


def test_every_table_with_a_finite_period_has_a_rule() -> None:
    covered = {rule.table.name for rule in rules()}
    missing = []
    for table in Base.metadata.tables.values():
        classes = {declaration_of(col).retention for col in table.columns}  # type: ignore[union-attr]
        finite = {c for c in classes - LIFETIME if SCHEDULE[c].days is not None}
        if finite and table.name not in covered and table.name not in EXEMPT:
            missing.append(f"{table.name} ({', '.join(sorted(finite))})")
    assert missing == [], (
        "tables kept for a limited time without a retention rule "
        f"(add one in connectx.retention.rules, or exempt it with a reason): {missing}"
    )


def test_rules_match_the_declared_classes() -> None:
    for rule in rules():
        declared = {declaration_of(col).retention for col in rule.table.columns}  # type: ignore[union-attr]
        if rule.columns:  # anonymise: the columns it clears
            declared = {declaration_of(rule.table.c[n]).retention for n in rule.columns}  # type: ignore[union-attr]
        # A rule acts by its own class; the columns declare it, or a longer lifetime class
        # that the rule shortens (message content is kept while the workspace exists unless a
        # period is chosen).
        assert rule.retention in declared or declared <= LIFETIME, (rule.name, declared)
        assert rule.table.name not in EXEMPT, rule.name
