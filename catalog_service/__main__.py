"""`python -m catalog_service`."""

from catalog_service.app import create_app
from catalog_service.settings import CatalogSettings
from shared.runner import serve

if __name__ == "__main__":
    serve(create_app, CatalogSettings())
