"""The e2e tests use the session stack from tests/conftest.py (`stack`, `hub`, `stack_logs`)."""
