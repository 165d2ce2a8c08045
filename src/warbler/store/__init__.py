"""Storage: SQLAlchemy models, repositories and migrations. Imports nothing from the domain."""
