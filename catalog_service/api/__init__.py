"""HTTP handlers of catalog_service, one module per API surface."""
