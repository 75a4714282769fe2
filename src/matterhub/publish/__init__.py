"""Publish: dataset versions, persistent identifiers, downloads, archives and citations."""

from matterhub.publish.pid import PIDProvider, load_pid_provider
from matterhub.publish.service import DatasetService, FileHandle

__all__ = ["DatasetService", "FileHandle", "PIDProvider", "load_pid_provider"]
