"""history_service's HTTP API: one module per public dialect, plus the internal routes."""
