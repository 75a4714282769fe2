"""CALPHAD thermodynamic databases (TDB), parsed from the text: elements, phases, parameters."""

from __future__ import annotations

import re

from matterhub.connect.extractors.base import (
    ExtractionContext,
    Extractor,
    FileGroup,
    Record,
    StagedFile,
)

__all__ = ["TdbExtractor"]

# TDB keywords may be abbreviated to any unambiguous prefix (Thermo-Calc's rule).
_COMMANDS = {
    "ELEMENT": 4,
    "PHASE": 4,
    "PARAMETER": 4,
    "FUNCTION": 4,
    "CONSTITUENT": 5,
    "TYPE_DEFINITION": 4,
    "SPECIES": 4,
}
_NOT_ELEMENTS = {"VA", "/-", "*"}
_REFERENCE = re.compile(r"^\s*\$\s*(.*?)\s*$", re.MULTILINE)
PYCALPHAD_BIBTEX = """@article{otis2017pycalphad,
  title={pycalphad: CALPHAD-based Computational Thermodynamics in Python},
  author={Otis, Richard and Liu, Zi-Kui}, journal={Journal of Open Research Software},
  volume={5}, number={1}, pages={1}, year={2017}, doi={10.5334/jors.140}
}"""


def _command(word: str) -> str | None:
    word = word.upper()
    for name, shortest in _COMMANDS.items():
        if len(word) >= shortest and name.startswith(word):
            return name
    return None


def _phase_name(raw: str) -> str:
    # "LIQUID:L" and "FCC_A1%" carry model letters and flags after the name.
    return raw.split(":")[0].rstrip("%&#+").upper()


class TdbExtractor(Extractor):
    """TDB files → `material` (elements) and `calphad` (phases, species, counts)."""

    name = "tdb"
    version = "0.1.0"
    priority = 10

    def accepts(self, file: StagedFile) -> bool:
        """Files with a .tdb extension."""
        return file.suffix == "tdb"

    def extract(self, group: FileGroup, context: ExtractionContext) -> Record:
        """Elements, phases and parameter counts; no pycalphad needed."""
        text = group.files[0].path.read_text(encoding="utf-8", errors="replace")
        comments = [c for c in _REFERENCE.findall(text) if c.strip("$ ")]
        body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("$"))
        elements: set[str] = set()
        phases: set[str] = set()
        species: set[str] = set()
        counts = {"PARAMETER": 0, "FUNCTION": 0}
        for statement in body.split("!"):
            words = statement.split()
            if not words:
                continue
            command = _command(words[0])
            if command == "ELEMENT" and len(words) > 1 and words[1].upper() not in _NOT_ELEMENTS:
                elements.add(words[1].upper())
            elif command in {"PHASE", "CONSTITUENT"} and len(words) > 1:
                phases.add(_phase_name(words[1]))
            elif command == "SPECIES" and len(words) > 1:
                species.add(words[1].upper())
            elif command in counts:
                counts[command] += 1
        if not elements and not phases:
            raise ValueError("no ELEMENT or PHASE statements: not a TDB database")
        pretty = sorted(e.capitalize() for e in elements)
        calphad: Record = {
            "phases": sorted(phases),
            "elements": sorted(elements),
            "parameter_count": counts["PARAMETER"],
            "function_count": counts["FUNCTION"],
        }
        if species:
            calphad["species"] = sorted(species)
        if comments:
            calphad["comment"] = comments[0][:500]
        material: Record = {
            "elements": pretty,
            "composition": "".join(pretty),
            "chemical_system": "-".join(pretty),
        }
        return {"material": material, "calphad": calphad}

    def citations(self) -> list[str]:
        """pycalphad, whose TDB grammar this parser follows."""
        return [PYCALPHAD_BIBTEX]
