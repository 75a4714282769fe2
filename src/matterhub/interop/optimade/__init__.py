"""OPTIMADE v1.2: structures and references of the hub for the field's common query language.

`filters` translates OPTIMADE's filter grammar into the search query tree, `fields` names the
properties and their index paths, `entries` builds resources, `service` runs listings.
"""

from matterhub.interop.optimade.filters import FilterError, FilterLimits, parse_filter
from matterhub.interop.optimade.service import EntryPage, EntryQuery, OptimadeService

__all__ = [
    "EntryPage",
    "EntryQuery",
    "FilterError",
    "FilterLimits",
    "OptimadeService",
    "parse_filter",
]
