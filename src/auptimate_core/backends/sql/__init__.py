"""SQL storage through SQLAlchemy Core: the library's tables, the ledger repository, ranking SQL."""
