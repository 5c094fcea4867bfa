"""Storage: SQLAlchemy tables, Alembic migrations and the repository (the only code that opens a Session)."""
