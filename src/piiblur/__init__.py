"""PiiBlur: find personal information in images and videos and hide it, self-hosted."""

__version__ = "0.1.0"
