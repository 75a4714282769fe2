"""The CDI servables' descriptions: phase retrieval (a python function) and the CNN (Keras).

``phase_retrieval_description()`` describes ``phase_retrieval.py:retrieve_phase`` — a 32×32
intensity (photon counts, q centred as ``simulate.py`` writes it) in, a (2, 32, 32) array
[amplitude, phase in rad] out — in an environment of numpy and scipy only; the document credits
the methods' authors (Fienup's HIO, Marchesini's shrink-wrap) and uses the project's licence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matterhub.client.describe import describe_files
from matterhub.client.describe.base import ServableDescription

__all__ = [
    "CHERUKARA_2018",
    "INTENSITY",
    "PHASE_RETRIEVAL",
    "RECONSTRUCTION",
    "phase_retrieval_description",
]

HERE = Path(__file__).resolve().parent
PHASE_RETRIEVAL = "cdi_phase_retrieval"
INTENSITY: dict[str, Any] = {
    "type": "ndarray",
    "shape": [32, 32],
    "item_type": {"type": "float"},
    "description": "diffraction intensity, photon counts, 32x32, q centred (examples/cdi)",
}
RECONSTRUCTION: dict[str, Any] = {
    "type": "ndarray",
    "shape": [2, 32, 32],
    "item_type": {"type": "float"},
    "description": "[amplitude (1 in the crystal), phase in rad (0 outside the support)]",
}
FIENUP_1982 = "10.1364/AO.21.002758"  # Fienup, Appl. Opt. 21, 2758 (1982): ER and HIO
MARCHESINI_2003 = "10.1103/PhysRevB.68.140101"  # Marchesini et al., PRB 68, 140101 (2003)
CHERUKARA_2018 = "10.1038/s41598-018-34525-1"  # Cherukara et al., Sci. Rep. 8, 16520 (2018)


def phase_retrieval_description(example: Any = None) -> ServableDescription:
    """The phase-retrieval servable, with `example` (a 32×32 intensity) as its checked input."""
    description = describe_files(
        PHASE_RETRIEVAL,
        "phase_retrieval:retrieve_phase",
        [HERE / "phase_retrieval.py"],
        input_type=INTENSITY,
        output_type=RECONSTRUCTION,
    )
    description.add_requirements({"numpy": "2.4.6", "scipy": "1.17.1"})
    description.set_title("CDI phase retrieval: HIO + ER with a shrink-wrap support")
    description.set_creators(["Fienup, James R.", "Marchesini, Stefano", "MatterHub, CDI use case"])
    description.set_abstract(
        "Iterative phase retrieval for a 32x32 coherent diffraction intensity: hybrid "
        "input-output and error reduction with a shrink-wrap support, three random starts, "
        "on the real-space grid the intensity implies. Returns amplitude and phase."
    )
    description.set_domains(["coherent diffraction imaging", "phase retrieval"])
    description.set_license("Apache-2.0", "https://www.apache.org/licenses/LICENSE-2.0")
    description.add_related_identifier(FIENUP_1982, "IsDocumentedBy")
    description.add_related_identifier(MARCHESINI_2003, "IsDocumentedBy")
    if example is not None:
        description.set_example(example)
    return description
