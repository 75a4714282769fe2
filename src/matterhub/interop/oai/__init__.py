"""OAI-PMH 2.0: this hub's public datasets for harvesters (`/oai`)."""

from matterhub.interop.oai.protocol import TokenCodec
from matterhub.interop.oai.repository import FORMATS, OAIRepository, RepositoryInfo

__all__ = ["FORMATS", "OAIRepository", "RepositoryInfo", "TokenCodec"]
