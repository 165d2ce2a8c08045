"""Every table module, imported once so ``Base.metadata`` knows the whole schema (migrations,
tests). Add a new ``models_*`` module here."""

from warbler.store import (
    models,
    models_access,
    models_ai,
    models_audit,
    models_crypto,
    models_kb,
    models_privacy,
    models_redaction,
    models_support,
    models_tools,
)

__all__ = [
    "models",
    "models_access",
    "models_ai",
    "models_audit",
    "models_crypto",
    "models_kb",
    "models_privacy",
    "models_redaction",
    "models_support",
    "models_tools",
]
