"""Settings come from WARBLER_* environment variables and an optional TOML file; env wins."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from warbler.config import DEFAULT_UPLOAD_TYPES, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    import os

    for name in list(os.environ):
        if name.startswith("WARBLER_"):
            monkeypatch.delenv(name)


def test_defaults_without_env_or_file():
    s = load_settings()
    assert (s.max_text_chars, s.recall_window_seconds, s.sqlite_synchronous) == (
        10_000,
        120,
        "FULL",
    )
    assert s.allowed_upload_types == DEFAULT_UPLOAD_TYPES
    assert s.effective_database_url.startswith("sqlite+warbler:///")
    assert s.is_sqlite and s.files_dir == s.data_dir / "files"


def test_env_vars_set_fields(monkeypatch, tmp_path):
    monkeypatch.setenv("WARBLER_MAX_TEXT_CHARS", "500")
    monkeypatch.setenv("WARBLER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("WARBLER_ALLOWED_UPLOAD_TYPES", '["image/png", "text/plain"]')
    monkeypatch.setenv("WARBLER_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
    s = load_settings()
    assert s.max_text_chars == 500 and s.data_dir == tmp_path
    assert s.allowed_upload_types == ["image/png", "text/plain"]
    assert s.webhook_allow_private_targets is True


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "warbler.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_toml_file_named_by_warbler_config_file_sets_fields(monkeypatch, tmp_path):
    path = _toml(tmp_path, 'max_text_chars = 700\nrecall_window_seconds = 30\nhost = "0.0.0.0"\n')
    monkeypatch.setenv("WARBLER_CONFIG_FILE", str(path))
    s = load_settings()
    assert (s.max_text_chars, s.recall_window_seconds, s.host) == (700, 30, "0.0.0.0")


def test_env_vars_win_over_the_toml_file(monkeypatch, tmp_path):
    path = _toml(tmp_path, "max_text_chars = 700\nrecall_window_seconds = 30\n")
    monkeypatch.setenv("WARBLER_CONFIG_FILE", str(path))
    monkeypatch.setenv("WARBLER_MAX_TEXT_CHARS", "900")
    s = load_settings()
    assert (s.max_text_chars, s.recall_window_seconds) == (900, 30)


def test_explicit_overrides_win_over_both(monkeypatch, tmp_path):
    path = _toml(tmp_path, "max_text_chars = 700\n")
    monkeypatch.setenv("WARBLER_MAX_TEXT_CHARS", "900")
    assert load_settings(path, max_text_chars=42).max_text_chars == 42


def test_invalid_values_are_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("WARBLER_MAX_REQUEST_BYTES", "10")  # below the 1024 minimum
    with pytest.raises(ValidationError):
        load_settings()
    monkeypatch.delenv("WARBLER_MAX_REQUEST_BYTES")
    with pytest.raises(ValidationError):
        load_settings(_toml(tmp_path, 'sqlite_synchronous = "OFF"\n'))


def test_list_settings_accept_comma_separated_env_values(monkeypatch):
    monkeypatch.setenv("WARBLER_ALLOWED_UPLOAD_TYPES", "image/png, text/plain")
    assert load_settings().allowed_upload_types == ["image/png", "text/plain"]
