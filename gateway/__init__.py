"""The gateway: authenticates every caller, then routes the request to the service that owns it."""
