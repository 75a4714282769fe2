"""Model adapters: the kinds of servable a hub runs come from the `matterhub.model_adapters` entry
points; a third party's adapter brings its loader into every environment and its servables build,
run and are cited as its kind, without editing MatterHub."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from matterhub.bootstrap import model_adapters
from matterhub.client.describe import ServableDescription
from matterhub.client.errors import APIError
from matterhub.core.errors import InvalidInput
from matterhub.core.servables import SHIMS, check_document
from matterhub.hub.adapters import ENTRY_POINT_GROUP, ModelAdapter
from matterhub.plugins import plugin_names
from matterhub.settings import Settings
from tests.distributions import install_distribution
from tests.hub.conftest import hub_settings, running_hub

SHIM = "acme.PolynomialServable"

ADAPTER = '''
"""Acme's polynomial models for MatterHub."""

from pathlib import Path

from pydantic import Field

from matterhub.core.errors import InvalidInput
from matterhub.hub.adapters import ModelAdapter
from matterhub.plugins import PluginSettings


class PolynomialSettings(PluginSettings):
    max_degree: int = Field(default=5, ge=0, le=50, description="Highest degree accepted.")


class PolynomialAdapter(ModelAdapter):
    shim = "acme.PolynomialServable"
    kind = "Acme polynomial"
    arrays = False
    source = Path(__file__).with_name("loader.py")
    settings_model = PolynomialSettings

    def check(self, document):
        degree = document["servable"]["methods"]["run"]["method_details"].get("degree", 0)
        if degree > self.settings.max_degree:
            raise InvalidInput(
                f"degree {degree} is above {self.settings.max_degree}",
                field="servable.methods.run.method_details.degree",
            )
'''

# What runs inside the servable's environment: the standard library only.
LOADER = """
import json


def load(document, files_dir, details):
    model = document["dlhub"]["files"]["model"]
    coefficients = json.loads((files_dir / model).read_text())

    def run(inputs, parameters):
        assert isinstance(inputs, list)  # arrays = False: JSON lists, not numpy
        return [sum(c * x**i for i, c in enumerate(coefficients)) for x in inputs]

    return run
"""


@pytest.fixture
def acme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return install_distribution(
        tmp_path / "site",
        monkeypatch,
        name="acme-polynomials",
        files={"acme_polynomials/__init__.py": ADAPTER, "acme_polynomials/loader.py": LOADER},
        entry_points="""
            [matterhub.model_adapters]
            polynomial = acme_polynomials:PolynomialAdapter
        """,
    )


def polynomial(tmp_path: Path, name: str, coefficients: list[float]) -> ServableDescription:
    """A servable as Acme's own describer would make it: p(x) = sum(c_i x^i)."""
    path = tmp_path / name / "coefficients.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(coefficients))
    description = ServableDescription(
        name, SHIM, model_type="polynomial", method_details={"degree": len(coefficients) - 1}
    )
    description.add_file(path, path.name, key="model")
    description.set_inputs({"type": "list", "item_type": {"type": "float"}})
    description.set_outputs({"type": "list", "item_type": {"type": "float"}})
    description.set_title(f"Polynomial {name}").set_creators(["Doe, Jane"])
    return description.set_example([0.0, 1.0, 2.0], None)


def test_the_builtin_adapters_are_the_documented_shims(tmp_path: Path) -> None:
    assert set(plugin_names(ENTRY_POINT_GROUP)) >= {"python", "sklearn", "torch", "keras", "onnx"}
    adapters = model_adapters(Settings(data_dir=tmp_path))
    assert adapters.shims == frozenset(SHIMS)
    assert adapters.sources() == ()  # the built-in loaders live in the shim
    assert adapters.kinds()["sklearn.ScikitLearnServable"] == "scikit-learn model"


def test_a_hub_refuses_a_kind_it_has_no_adapter_for(tmp_path: Path) -> None:
    description = polynomial(tmp_path, "poly", [1.0, 2.0])
    description.validate()  # the SDK does not know the hub's adapters: any well-formed shim
    with pytest.raises(InvalidInput) as caught:
        check_document(description.document, shims=SHIMS)
    assert (
        caught.value.field == "servable.shim" and "acme.PolynomialServable" in caught.value.detail
    )
    description.document["servable"]["shim"] = "no dots"
    with pytest.raises(InvalidInput) as caught:
        check_document(description.document)
    assert caught.value.field == "servable.shim"
    with running_hub(hub_settings(tmp_path / "hub")) as hub:
        with pytest.raises(APIError) as refused:
            hub.client("alice").publish_servable(polynomial(tmp_path, "poly2", [1.0]))
        assert refused.value.status == 422 and refused.value.field == "servable.shim"


def test_a_third_party_adapter_builds_runs_and_is_cited_as_its_kind(
    acme: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MATTERHUB_MODEL_ADAPTER_POLYNOMIAL_MAX_DEGREE", "3")
    with running_hub(hub_settings(tmp_path / "hub")) as hub:
        alice = hub.client("alice")
        adapter = hub.services.servables.adapters.by_shim[SHIM]  # type: ignore[union-attr]
        assert isinstance(adapter, ModelAdapter) and adapter.settings.max_degree == 3  # type: ignore[attr-defined]
        build = alice.publish_servable(polynomial(tmp_path, "poly", [1.0, 0.0, 2.0]), wait=True)
        assert build["status"] == "succeeded", build["log"]
        assert alice.run("alice/poly", [0.0, 1.0, 3.0]) == [1.0, 3.0, 19.0]
        # The adapter's own rule, with its own setting, at publish.
        with pytest.raises(APIError) as refused:
            alice.publish_servable(polynomial(tmp_path, "quartic", [1.0] * 5))
        assert refused.value.field == "servable.methods.run.method_details.degree"
        cited = json.loads(hub.client().cite_servable("alice/poly", format="datacite-json"))
        assert cited["data"]["attributes"]["types"] == {
            "resourceTypeGeneral": "Software",
            "resourceType": "Acme polynomial",
        }


def test_adapter_settings_are_checked_at_start(acme: Path, tmp_path: Path) -> None:
    bad = Settings(data_dir=tmp_path, model_adapter_options={"polynomial": {"max_degree": 99}})
    with pytest.raises(InvalidInput) as caught:
        model_adapters(bad)
    assert caught.value.field == "model_adapter_options.polynomial.max_degree"
    absent = Settings(data_dir=tmp_path, model_adapter_options={"tensorflow": {}})
    with pytest.raises(InvalidInput) as caught:
        model_adapters(absent)
    assert caught.value.field == "model_adapter_options"
