"""The REST API: the app factory, dependencies, error mapping and routers."""

from matterhub.api.app import create_app

__all__ = ["create_app"]
