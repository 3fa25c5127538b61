"""Model files shipped with the package; MANIFEST.json records their source, sha256 and licence."""
