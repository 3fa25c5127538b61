"""Where media bytes live. The rest of the code sees only the ``Storage`` protocol."""

from piiblur.storage.base import Storage, StorageError
from piiblur.storage.factory import storage_from_settings

__all__ = ["Storage", "StorageError", "storage_from_settings"]
