"""`python -m gateway`."""

from gateway.app import create_app
from gateway.server import serve_gateway
from gateway.settings import GatewaySettings

if __name__ == "__main__":
    serve_gateway(create_app, GatewaySettings())
