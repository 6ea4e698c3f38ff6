"""Hand-written INSERTs on hot paths name every column of their model: a model that gains a column the SQL
does not write fails here (Django keeps defaults in Python, so the raw INSERT would store NULL or fail)."""

from __future__ import annotations

import re

import pytest
from django.apps import apps

from invoicing.services import metering, sequences
from ledger.services import posting as ledger_posting
from webhooks import services as webhook_services

_INSERT = re.compile(r"INSERT INTO (\w+)(?:\s+AS\s+\w+)?\s*\(([^)]*)\)", re.IGNORECASE)

# Columns a statement leaves out on purpose (nullable, or filled later by another statement): {table: {cols}}.
_LEFT_OUT: dict[str, set[str]] = {}


def _statements() -> list[tuple[str, str, str]]:
    found = []
    for module in (ledger_posting, metering, sequences, webhook_services):
        for name, value in vars(module).items():
            if isinstance(value, str) and "INSERT INTO" in value.upper():
                for table, columns in _INSERT.findall(value):
                    found.append((f"{module.__name__}.{name}", table, columns))
    return found


def _model_columns(table: str) -> set[str]:
    for model in apps.get_models():
        if model._meta.db_table == table:
            return {f.column for f in model._meta.concrete_fields if not f.primary_key}
    raise AssertionError(f"no model for table {table}")


STATEMENTS = _statements()


def test_the_hot_path_inserts_are_found():
    tables = {table for _, table, _ in STATEMENTS}
    assert {"ledger_balancetransaction", "ledger_entry", "invoicing_meterevent", "invoicing_meterrollup",
            "invoicing_unmatchedmeterevent", "webhooks_billingevent"} <= tables, tables


@pytest.mark.parametrize(("where", "table", "columns"), STATEMENTS, ids=[f"{w}:{t}" for w, t, _ in STATEMENTS])
def test_every_insert_writes_every_column_of_its_model(where, table, columns):
    written = {c.strip().strip('"') for c in columns.split(",") if c.strip()}
    expected = _model_columns(table) - _LEFT_OUT.get(table, set())
    assert written - _model_columns(table) == set(), f"{where} writes columns {table} does not have"
    assert expected - written == set(), f"{where} does not write {sorted(expected - written)} of {table}"
