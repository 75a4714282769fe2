"""The field's other languages: OPTIMADE, OAI-PMH, RO-Crate, Croissant and harvesting others.

Services over the catalog, the search index and published versions; the routes in `api/` speak
the wire formats. Nothing here imports the web framework.
"""
