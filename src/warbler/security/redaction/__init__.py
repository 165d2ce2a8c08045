"""PII redaction: personal data is replaced by placeholders before text leaves for an
external model (``provider.RedactingProvider``, the remote embedder) and in logs (``logs``).

Detectors (``detectors``), a tenant's patterns and keywords (``custom``), one scan
(``scanner``), one answer's placeholders (``vault``, ``session``), per-tenant policies
(``policy``, ``service``). docs/security.md, "PII redaction before external models and in
logs", says what is found, where it applies and how it is tested.
"""
