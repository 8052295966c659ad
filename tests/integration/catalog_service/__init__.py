"""catalog_service against a real MongoDB-protocol server."""
