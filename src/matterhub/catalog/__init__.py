"""The system of record: users, groups, tokens, datasets, submissions, servables, tasks."""

from matterhub.catalog.database import Catalog, open_catalog

__all__ = ["Catalog", "open_catalog"]
