"""Tables, migrations and repositories. SQLite by default, PostgreSQL for several workers."""
