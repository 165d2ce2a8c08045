"""Every table module, imported once so ``Base.metadata`` knows the whole schema (migrations,
tests). Add a new ``models_*`` module here."""

from warbler.store import (
    models,
    models_ai,
    models_audit,
    models_kb,
    models_support,
    models_tools,
)

__all__ = ["models", "models_ai", "models_audit", "models_kb", "models_support", "models_tools"]
