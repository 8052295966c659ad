"""access_service: users, API keys, groups, roles and per-collection access; the one place that decides."""
