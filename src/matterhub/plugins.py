"""The one plugin loader: entry points by group and name, and each plugin's typed settings.

Every extension point of MatterHub is an entry-point group (`matterhub.extractors`,
`matterhub.search_backends`, `matterhub.executors`, …); the built-in plugins register in the
same groups as third-party ones, so a package that declares

    [project.entry-points."matterhub.search_backends"]
    opensearch = "my_package.search:OpenSearchIndex"

is picked up by a hub with `MATTERHUB_SEARCH_BACKEND=opensearch` without editing MatterHub.

A plugin that takes settings declares them as a pydantic model (`settings_model`); the hub
fills it from the options given in its own settings (a JSON object such as `search_options`),
then `MATTERHUB_<PORT>_<NAME>_<FIELD>` variables (or `.env` lines), then the model's defaults,
and a bad value stops the start with an `InvalidInput` naming the field.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from matterhub.core.errors import InvalidInput

__all__ = [
    "NoSettings",
    "PluginSettings",
    "env_prefix",
    "iter_plugins",
    "load_plugin",
    "plugin_names",
    "plugin_settings",
]

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)


class PluginSettings(BaseModel):
    """Base of a plugin's settings: unknown keys are refused, so a typo names itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoSettings(PluginSettings):
    """The settings of a plugin that takes none."""


def _points(group: str) -> dict[str, EntryPoint]:
    return {point.name: point for point in entry_points(group=group)}


def plugin_names(group: str) -> list[str]:
    """The names registered under an entry-point group, sorted."""
    return sorted(_points(group))


def load_plugin(group: str, name: str, *, field: str, what: str) -> Any:
    """The object the entry point `name` of `group` names (imported now).

    Raises:
        InvalidInput: no such plugin, or it fails to import (a missing library names the extra
            its distribution would install); `field` is the setting that named it.
    """
    points = _points(group)
    point = points.get(name)
    if point is None:
        if points:
            known = ", ".join(sorted(points))
            raise InvalidInput(f"unknown {what} {name!r} (known: {known})", field=field)
        raise InvalidInput(
            f"unknown {what} {name!r}: nothing is registered under the entry points "
            f"{group!r} (is matterhub installed? `pip install -e .` refreshes a source "
            "checkout's entry points)",
            field=field,
        )
    try:
        return point.load()
    except ImportError as exc:
        extra = _extra_hint(point)
        raise InvalidInput(f"{what} {name!r} cannot be loaded: {exc}{extra}", field=field) from exc


def iter_plugins(group: str) -> Iterator[tuple[str, Any]]:
    """Every plugin of a group as (name, loaded object), in name order; one that fails to import
    is logged and skipped, so a broken plugin does not disable the others."""
    for name, point in sorted(_points(group).items()):
        try:
            yield name, point.load()
        except Exception as exc:
            log.warning("plugin %s of %s failed to load: %s", name, group, exc)


def _extra_hint(point: EntryPoint) -> str:
    """`; install matterhub[ray]` when the entry point names the extra it needs (`[ray]`)."""
    dist = point.dist.name if point.dist is not None else None
    if not point.extras or dist is None:
        return ""
    return f"; install {dist}[{','.join(point.extras)}]"


def env_prefix(port: str, name: str) -> str:
    """`MATTERHUB_<PORT>_<NAME>_` with anything but letters and digits as `_`."""
    parts = (re.sub(r"[^A-Za-z0-9]+", "_", part).strip("_").upper() for part in (port, name))
    return "MATTERHUB_" + "_".join(parts) + "_"


def plugin_settings(model: type[M], options: Mapping[str, Any], *, prefix: str, field: str) -> M:
    """`model` filled from `options`, then the `prefix…` environment variables and `.env` lines,
    then its defaults.

    Raises:
        InvalidInput: a value does not fit; `field` is `<field>.<key>` (the option's path).
    """
    reader: type[BaseSettings] = type(
        f"{model.__name__}FromEnv",
        (BaseSettings, model),
        {
            "model_config": SettingsConfigDict(
                env_prefix=prefix, env_file=".env", env_file_encoding="utf-8", extra="forbid"
            ),
            "__module__": model.__module__,
        },
    )
    try:
        return model.model_validate(reader(**dict(options)).model_dump())
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"])
        raise InvalidInput(
            f"{field}.{key} (or {prefix}{key.upper()}): {error['msg']}", field=f"{field}.{key}"
        ) from None
