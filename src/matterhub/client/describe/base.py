"""`ServableDescription`: builds a servable document and collects the files of its bundle.

The setters follow DLHub's SDK (`set_title`, `set_creators`, `add_requirement`, `add_file`,
`set_inputs`, …) and return `self`, so a description reads as one chain. `to_dict()` gives the
document; `validate()` checks it with the same rules the hub applies (`core.servables`).
"""

from __future__ import annotations

import copy
import io
import json
import zipfile
from pathlib import Path
from typing import Any

from matterhub.client.describe.requirements import installed_version
from matterhub.core.servables import check_document
from matterhub.core.types import check_type, validate

__all__ = ["ServableDescription"]


class ServableDescription:
    """A servable document under construction plus the local files it ships."""

    def __init__(
        self,
        name: str,
        shim: str,
        *,
        model_type: str = "",
        method_details: dict[str, Any] | None = None,
    ) -> None:
        self.document: dict[str, Any] = {
            "datacite": {"titles": [], "creators": []},
            "dlhub": {
                "name": name,
                "type": "servable",
                "domains": [],
                "visible_to": ["public"],
                "files": {},
                "dependencies": {"python": {}},
            },
            "servable": {
                "shim": shim,
                "type": model_type or shim.split(".")[0],
                "methods": {
                    "run": {
                        "input": {"type": "python object", "python_type": "object"},
                        "output": {"type": "python object", "python_type": "object"},
                        "parameters": {},
                        "method_details": dict(method_details or {}),
                    }
                },
            },
        }
        self.files: dict[str, Path] = {}
        # Where the hub fetches the files from instead (`set_source`); None: they are uploaded.
        self.source: dict[str, Any] | None = None

    # datacite --------------------------------------------------------------------------------

    def set_title(self, title: str) -> ServableDescription:
        """The human title."""
        self.document["datacite"]["titles"] = [{"title": title}]
        return self

    def set_creators(
        self, creators: list[str], affiliations: list[list[str]] | None = None
    ) -> ServableDescription:
        """Authors as `"Family, Given"`, optionally with affiliations per author."""
        self.document["datacite"]["creators"] = [
            {"creatorName": c, **({"affiliations": affiliations[i]} if affiliations else {})}
            for i, c in enumerate(creators)
        ]
        return self

    def set_abstract(self, text: str) -> ServableDescription:
        """A description of what the servable does."""
        self.document["datacite"]["descriptions"] = [
            {"description": text, "descriptionType": "Abstract"}
        ]
        return self

    def set_license(self, rights: str, uri: str | None = None) -> ServableDescription:
        """The license its citations state (e.g. `"MIT"`, `"https://opensource.org/license/mit"`)."""
        entry = {"rights": rights, **({"rightsURI": uri} if uri else {})}
        self.document["datacite"]["rightsList"] = [entry]
        return self

    def add_related_identifier(
        self, doi: str, relation: str = "IsDescribedBy"
    ) -> ServableDescription:
        """A related paper or dataset DOI (DLHub's `add_related_resource`)."""
        related = self.document["datacite"].setdefault("relatedIdentifiers", [])
        related.append(
            {"relatedIdentifier": doi, "relatedIdentifierType": "DOI", "relationType": relation}
        )
        return self

    def link_dataset(
        self, *, source_id: str | None = None, doi: str | None = None
    ) -> ServableDescription:
        """The training dataset: an MDF `source_id` on this or another hub, and/or its DOI."""
        if not source_id and not doi:
            raise ValueError("give the dataset's source_id, its DOI, or both")
        link = {k: v for k, v in {"source_id": source_id, "doi": doi}.items() if v}
        self.document["dlhub"]["training_data"] = link
        if doi:
            self.add_related_identifier(doi, "IsDerivedFrom")
        return self

    # dlhub -----------------------------------------------------------------------------------

    def set_name(self, name: str) -> ServableDescription:
        """The servable's name (no whitespace), unique on the hub."""
        self.document["dlhub"]["name"] = name
        return self

    def set_domains(self, domains: list[str]) -> ServableDescription:
        """Science domains, e.g. `["materials science", "band gap"]`."""
        self.document["dlhub"]["domains"] = list(domains)
        return self

    def set_visibility(
        self, visible_to: list[str], runnable_by: list[str] | None = None
    ) -> ServableDescription:
        """Who sees the metadata and who may run it: 'public', 'user:<name>', 'group:<name>'."""
        self.document["dlhub"]["visible_to"] = list(visible_to)
        if runnable_by is not None:
            self.document["dlhub"]["runnable_by"] = list(runnable_by)
        return self

    def add_requirement(self, library: str, version: str | None = "detect") -> ServableDescription:
        """A Python requirement; `'detect'` pins the installed version, None or 'latest' any."""
        if version == "detect":
            version = installed_version(library)
            if version is None:
                raise LookupError(f"{library!r} is not installed here; give its version")
        self.document["dlhub"]["dependencies"]["python"][library] = version or ""
        return self

    def add_requirements(self, requirements: dict[str, str]) -> ServableDescription:
        """Several requirements at once (`{name: version}`)."""
        for library, version in requirements.items():
            self.add_requirement(library, version)
        return self

    def add_file(
        self, path: str | Path, name: str | None = None, *, key: str = "other"
    ) -> ServableDescription:
        """Ship a file in the bundle, at `name` (default: the file's name)."""
        local = Path(path)
        if not local.is_file():
            raise FileNotFoundError(f"{local} is not a file")
        rel = name or local.name
        self.files[rel] = local
        files = self.document["dlhub"]["files"]
        if key == "other":
            files.setdefault("other", [])
            if rel not in files["other"]:
                files["other"].append(rel)
        else:
            files[key] = rel
        return self

    def set_source(
        self, url: str, *, ref: str | None = None, paths: list[str] | None = None
    ) -> ServableDescription:
        """Let the hub fetch the files from where they live instead of uploading them.

        `url` is a git repository (`git+https://…`, `git+ssh://…`, `https://github.com/o/r`,
        optionally `…@<branch|tag|commit>`) or a URL (`https://…` file or archive, an fsspec
        URL the hub allows, `zenodo:<id>`, `figshare:<id>`); `paths` are the files or folders
        to take (default: all). Files the document names are paths in the source. The hub
        records the commit and each file's checksum as `dlhub.source`.
        """
        if not url or not isinstance(url, str):
            raise ValueError("give the source's URL")
        source: dict[str, Any] = {"url": url}
        if ref:
            source["ref"] = ref
        if paths:
            source["paths"] = [str(p) for p in paths]
        self.source = source
        return self

    def add_source_file(self, path: str, *, key: str = "other") -> ServableDescription:
        """Name a file of the source (see `set_source`) in the document, without a local copy."""
        files = self.document["dlhub"]["files"]
        if key == "other":
            files.setdefault("other", [])
            if path not in files["other"]:
                files["other"].append(path)
        else:
            files[key] = path
        return self

    # servable --------------------------------------------------------------------------------

    @property
    def run_method(self) -> dict[str, Any]:
        """The `run` method block."""
        method: dict[str, Any] = self.document["servable"]["methods"]["run"]
        return method

    def set_inputs(self, spec: dict[str, Any]) -> ServableDescription:
        """The input type (see `core.types`)."""
        check_type(spec, "input")
        self.run_method["input"] = spec
        return self

    def set_outputs(self, spec: dict[str, Any]) -> ServableDescription:
        """The output type."""
        check_type(spec, "output")
        self.run_method["output"] = spec
        return self

    def set_fold_rows(self, fold: bool = True) -> ServableDescription:
        """Declare the model's rows independent (sklearn, torch, Keras, ONNX; one input array):
        the hub may answer several calls by one call on their inputs concatenated along the
        first axis, each getting its own rows of the output (docs/hub-run.md)."""
        details = self.run_method.setdefault("method_details", {})
        details["fold_rows"] = bool(fold)
        return self

    def set_parameters(self, defaults: dict[str, Any]) -> ServableDescription:
        """Keyword parameters and their defaults."""
        self.run_method["parameters"] = dict(defaults)
        return self

    def set_example(
        self,
        inputs: Any,
        output: Any = None,
        *,
        check_output: bool | None = None,
        tolerance: float = 1e-6,
    ) -> ServableDescription:
        """An example input and (optionally) its expected output, checked by every build."""
        example: dict[str, Any] = {"input": inputs}
        if check_output or (check_output is None and output is not None):
            example["output"] = output
            example["tolerance"] = tolerance
        self.document["servable"]["example"] = json.loads(json.dumps(example, default=_plain))
        return self

    # output ----------------------------------------------------------------------------------

    def publish_body(self) -> dict[str, Any]:
        """The JSON body of `POST /api/servables` for a description with a source."""
        if self.source is None:
            raise ValueError("this description has no source; upload its bundle")
        return {"document": self.to_dict(), "source": dict(self.source)}

    def to_dict(self) -> dict[str, Any]:
        """A copy of the document."""
        return copy.deepcopy(self.document)

    def validate(self) -> ServableDescription:
        """Check the document as the hub will (raises `InvalidInput` naming the path).

        With a source, the files are the hub's to find in it, so only the document is checked.
        """
        check_document(self.document, bundle_files=None if self.source else self.files)
        return self

    def validate_input(self, value: Any) -> list[str]:
        """Check a value against the input type (client-side, before a run); returns warnings."""
        return validate(value, self.run_method["input"])

    def bundle(self) -> bytes:
        """The bundle as one zip (`dlhub.json` + files), as `POST /api/servables` accepts."""
        if self.source is not None:
            raise ValueError("this servable's files come from a source: publish it, no bundle")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("dlhub.json", json.dumps(self.document))
            for rel, local in sorted(self.files.items()):
                archive.write(local, rel)
        return buffer.getvalue()


def _plain(value: Any) -> Any:
    """numpy arrays and scalars in examples → plain JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} cannot be written as JSON")
