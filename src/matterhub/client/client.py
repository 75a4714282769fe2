"""`matterhub.Client`: the HTTP core plus every API family as a mixin."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from matterhub.client.access import AccessMethods
from matterhub.client.config import client_from_config
from matterhub.client.connect import ConnectMethods
from matterhub.client.datasets import DatasetMethods
from matterhub.client.runs import RunMethods
from matterhub.client.scaling import ScalingMethods
from matterhub.client.servables import ServableMethods

if TYPE_CHECKING:
    from matterhub.client.forge import Forge

__all__ = ["Client"]


class Client(
    DatasetMethods, ConnectMethods, ServableMethods, RunMethods, AccessMethods, ScalingMethods
):
    """A MatterHub client: `Client("http://localhost:8000", token=None, transport=…)`.

    Anonymous when `token` is None (public data only). Retries connection errors and 5xx
    answers with exponential backoff; failures raise `matterhub.client.errors.ClientError`.
    """

    @classmethod
    def from_config(cls, profile: str | None = None, **kwargs: Any) -> Client:
        """The hub and token saved by `matterhub login` (or `$MATTERHUB_URL`/`$MATTERHUB_TOKEN`)."""
        client: Client = client_from_config(profile, **kwargs)
        return client

    def forge(self, index: str = "mdf") -> Forge:
        """A Forge query builder on this client."""
        from matterhub.client.forge import Forge

        return Forge(index, client=self)
