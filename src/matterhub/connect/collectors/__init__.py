"""Collectors: bring a submission's data sources into a local staging folder."""

from matterhub.connect.collectors.base import Collector, CollectorContext, load_collectors

__all__ = ["Collector", "CollectorContext", "load_collectors"]
