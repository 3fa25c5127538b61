"""Outgoing webhooks: signing, secrets at rest, destination checks and the HTTP send itself.

Storage of events and their deliveries is in ``services.webhooks``; the delivery loop in
``jobs.webhooks``.
"""
