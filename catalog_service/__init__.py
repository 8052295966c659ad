"""catalog_service: namespaces, projects, datasets, the item registry, collections and their members."""
