"""Redaction pipelines: decode -> detect -> (track) -> obfuscate -> encode.

Pure media code: it takes paths and a ``DetectionEngine`` and knows nothing of HTTP, the database
or storage backends.
"""
