"""Discover: the query language, the search backends and the Globus Search–compatible service."""
