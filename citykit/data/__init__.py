"""Data: the synthetic city, importers, the registry, loading, schemas and quality."""
