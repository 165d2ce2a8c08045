"""Privacy: retention policies, a user's data export, and erasure (docs/security.md)."""
