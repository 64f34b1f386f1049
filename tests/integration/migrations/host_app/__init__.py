"""A small host application with its own Alembic history, in the same
database as the provenance store: the README's recipe, exercised by
`test_host_application_alembic.py`."""
