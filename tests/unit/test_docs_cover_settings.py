"""Every setting is documented, with its default, in docs/configuration.md."""

from __future__ import annotations

from pathlib import Path

from warbler.config import Settings

DOC = Path(__file__).parents[2] / "docs" / "configuration.md"


def test_every_setting_has_a_row_in_the_configuration_page():
    text = DOC.read_text()
    missing = [n for n in Settings.model_fields if f"`WARBLER_{n.upper()}`" not in text]
    assert not missing, f"document these settings in {DOC.name}: {missing}"


def test_every_setting_has_a_description():
    assert not [n for n, f in Settings.model_fields.items() if not f.description]
