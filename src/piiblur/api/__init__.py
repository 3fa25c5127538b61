"""HTTP only: routes, schemas, authentication and rate-limit headers. Work is done by ``services``."""
