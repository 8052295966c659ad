"""`python -m access_service`."""

from access_service.app import create_app
from access_service.settings import AccessSettings
from shared.runner import serve

if __name__ == "__main__":
    serve(create_app, AccessSettings())
