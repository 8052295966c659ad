"""`python -m gateway`."""

from gateway.app import create_app
from gateway.settings import GatewaySettings
from shared.runner import serve

if __name__ == "__main__":
    serve(create_app, GatewaySettings())
