"""HTTP handlers of access_service, one module per API surface."""
