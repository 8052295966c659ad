"""The OpenAPI 3.1 documents of the public API, built from the services' route tables, and `/docs`."""
