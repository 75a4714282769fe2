"""MatterHub: a self-hostable data and model hub for materials science."""

__version__ = "0.1.0.dev0"

__all__ = ["__version__"]
