"""The incident store: schema, engine, migrations, queries, bulk loading, import and the demo city.

Everything that speaks SQL lives in this package; it imports only SQLAlchemy, pandas,
numpy and the standard library.
"""
