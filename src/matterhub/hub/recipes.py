"""Container recipes (Dockerfile, Apptainer definition) for sites that deploy servables as images.

Both recipes reproduce the environment the hub built: the same interpreter minor version, the same
requirement lines (`requirements.txt`), the servable's files and the shim, with `serve` as the
entry point. They are build artefacts: written next to the version's files, never run by the hub.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["apptainer_definition", "dockerfile"]

_PY = f"{sys.version_info.major}.{sys.version_info.minor}"


def _labels(document: Mapping[str, Any]) -> dict[str, str]:
    dlhub = document.get("dlhub", {})
    return {
        "org.matterhub.servable": str(dlhub.get("shorthand_name", dlhub.get("name", ""))),
        "org.matterhub.version": str(dlhub.get("version", "")),
        "org.matterhub.shim": str(document.get("servable", {}).get("shim", "")),
    }


def dockerfile(document: Mapping[str, Any], requirements: Sequence[str]) -> str:
    """A Dockerfile: `docker build -f Dockerfile .` in the folder holding files/ and the shim."""
    labels = " \\\n      ".join(f'{k}="{v}"' for k, v in _labels(document).items())
    install = (
        "RUN pip install --no-cache-dir -r /servable/requirements.txt\n" if requirements else ""
    )
    return (
        f"FROM python:{_PY}-slim\n"
        f"LABEL {labels}\n"
        "WORKDIR /servable\n"
        "COPY requirements.txt document.json matterhub_shim.py /servable/\n"
        f"{install}"
        "COPY files/ /servable/files/\n"
        "RUN useradd --no-create-home servable\n"
        "USER servable\n"
        'ENTRYPOINT ["python", "/servable/matterhub_shim.py", "serve", '
        '"/servable/files", "/servable/document.json"]\n'
    )


def apptainer_definition(document: Mapping[str, Any], requirements: Sequence[str]) -> str:
    """An Apptainer/Singularity definition: `apptainer build servable.sif apptainer.def`."""
    labels = "\n".join(f"    {k} {v}" for k, v in _labels(document).items())
    post = "    pip install --no-cache-dir -r /servable/requirements.txt\n" if requirements else ""
    return (
        "Bootstrap: docker\n"
        f"From: python:{_PY}-slim\n\n"
        "%files\n"
        "    requirements.txt /servable/requirements.txt\n"
        "    document.json /servable/document.json\n"
        "    matterhub_shim.py /servable/matterhub_shim.py\n"
        "    files /servable/files\n\n"
        "%post\n"
        f"{post}"
        "    chmod -R a+rX /servable\n\n"
        "%labels\n"
        f"{labels}\n\n"
        "%runscript\n"
        "    exec python /servable/matterhub_shim.py serve /servable/files "
        '/servable/document.json "$@"\n'
    )
