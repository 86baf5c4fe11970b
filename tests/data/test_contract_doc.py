"""``docs/data-contract.md`` is the schema's readable copy, never a hand-edited one."""

from __future__ import annotations

from pathlib import Path

from spm_ml.data.contract_doc import contract_markdown
from spm_ml.data.schema import TABLES

PAGE = Path(__file__).resolve().parents[2] / "docs" / "data-contract.md"


def test_the_contract_page_is_generated_from_the_schema():
    assert PAGE.read_text() == contract_markdown(), (
        "docs/data-contract.md is stale; regenerate it with "
        "python -m spm_ml.data.contract_doc > docs/data-contract.md"
    )


def test_every_table_and_column_is_on_the_page():
    page = contract_markdown()
    for name, schema in TABLES.items():
        assert f"## `{name}`" in page
        for column in schema.column_names:
            assert f"| `{column}` |" in page
