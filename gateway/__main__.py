"""`python -m gateway`."""

from gateway.app import create_app
from gateway.settings import GatewaySettings
from shared.runner import serve

if __name__ == "__main__":
    settings = GatewaySettings()
    serve(create_app, settings, extra_ports=[settings.metrics_port] if settings.metrics_port else [])
