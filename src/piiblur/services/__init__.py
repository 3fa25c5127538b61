"""Use cases: what the API, the CLI and the workers ask the system to do.

Services take a SQLAlchemy session, storage and settings; they raise the errors in
``services.errors`` and never speak HTTP.
"""
