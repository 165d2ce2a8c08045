"""Running a node in production: readiness checks and graceful shutdown."""
