"""The properties MatterHub serves for each OPTIMADE entry type, and where the index keeps them."""

from __future__ import annotations

from dataclasses import dataclass

from matterhub.core.optimade import INDEX_KEY

__all__ = [
    "CHEMICAL_SYMBOLS",
    "PREFIX",
    "REFERENCE_FIELDS",
    "STRUCTURE_FIELDS",
    "Field",
]

PREFIX = "matterhub"
"""The provider prefix: the hub's own fields are `_matterhub_<name>`."""

_TABLE = (
    "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As "
    "Se Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd "
    "Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am "
    "Cm Bk Cf Es Fm Md No Lr Rf Db Sg Bh Hs Mt Ds Rg Cn Nh Fl Mc Lv Ts Og X"
)
CHEMICAL_SYMBOLS: tuple[str, ...] = tuple(_TABLE.split(" "))
"""The periodic table, and X for an unknown element (the symbols OPTIMADE allows)."""


@dataclass(frozen=True, slots=True)
class Field:
    """One property: its OPTIMADE type, the index path filters use (None: not filterable)."""

    type: str  # string, integer, float, timestamp, list, dictionary
    description: str
    path: str | None = None
    item: str | None = None  # the type of a list's items
    length: str | int | None = None  # LENGTH: the index path of the count, or a constant
    constant: str | None = None  # a value every entry has (`type`)
    sortable: bool = False
    unit: str | None = None


_O = f"{INDEX_KEY}."

STRUCTURE_FIELDS: dict[str, Field] = {
    "id": Field("string", "The entry's id: <source_name>_<record number>.", _O + "id"),
    "type": Field("string", "Always `structures`.", constant="structures"),
    "immutable_id": Field(
        "string", "The record in its dataset version: <source_id>.<record number>.",
        _O + "immutable_id",
    ),
    "last_modified": Field(
        "timestamp", "When the record's version was indexed.", _O + "last_modified",
        sortable=True,
    ),
    "elements": Field(
        "list", "Element symbols, alphabetical.", _O + "elements", item="string",
        length=_O + "nelements",
    ),
    "nelements": Field("integer", "Number of elements.", _O + "nelements", sortable=True),
    "elements_ratios": Field(
        "list", "Proportion of each element, in the order of `elements`.",
        _O + "elements_ratios", item="float", length=_O + "nelements",
    ),
    "chemical_formula_descriptive": Field(
        "string", "The formula of the cell or molecule as extracted.",
        _O + "chemical_formula_descriptive",
    ),
    "chemical_formula_reduced": Field(
        "string", "Alphabetical, divided by the greatest common divisor.",
        _O + "chemical_formula_reduced",
    ),
    "chemical_formula_hill": Field(
        "string", "Hill order (the molecule's own formula; a crystal's reduced one).",
        _O + "chemical_formula_hill",
    ),
    "chemical_formula_anonymous": Field(
        "string", "Reduced proportions, largest first, as A, B, C, …",
        _O + "chemical_formula_anonymous",
    ),
    "dimension_types": Field(
        "list", "Periodicity along each lattice vector (1 periodic, 0 not).",
        _O + "dimension_types", item="integer", length=3,
    ),
    "nperiodic_dimensions": Field(
        "integer", "Number of periodic dimensions.", _O + "nperiodic_dimensions", sortable=True
    ),
    "lattice_vectors": Field("list", "The cell's vectors (Å); null for molecules.", unit="Å"),
    "cartesian_site_positions": Field("list", "Site positions (Å).", unit="Å"),
    "nsites": Field("integer", "Number of sites.", _O + "nsites", sortable=True),
    "species": Field("list", "One species per element (ordered structures only)."),
    "species_at_sites": Field("list", "The species of each site."),
    "structure_features": Field(
        "list", "Always empty: MatterHub serves ordered structures without assemblies.",
        _O + "structure_features", item="string", length=0,
    ),
    "space_group_it_number": Field(
        "integer", "International Tables number of the space group (spglib, or as declared).",
        _O + "space_group_it_number", sortable=True,
    ),
    f"_{PREFIX}_source_id": Field(
        "string", "The dataset version holding the record.", "mdf.source_id"
    ),
    f"_{PREFIX}_source_name": Field("string", "The dataset holding the record.", "mdf.source_name"),
    f"_{PREFIX}_crystal_system": Field(
        "string", "Crystal system from the space group.", "crystal_structure.crystal_system"
    ),
    f"_{PREFIX}_files": Field(
        "list", "The record's files: path, URL, SHA-512 and previews.", item="dictionary"
    ),
}  # fmt: skip

REFERENCE_FIELDS: dict[str, Field] = {
    "id": Field("string", "The dataset's source_name.", "mdf.source_name"),
    "type": Field("string", "Always `references`.", constant="references"),
    "immutable_id": Field("string", "The indexed version: its source_id.", "mdf.source_id"),
    "last_modified": Field("timestamp", "When the version was indexed.", "mdf.ingest_date"),
    "title": Field("string", "The dataset's title.", "dc.titles.title"),
    "authors": Field("list", "The dataset's creators.", item="dictionary"),
    "publisher": Field("string", "Who published the dataset.", "dc.publisher"),
    "url": Field("string", "The version's landing page (its identifier when it has one)."),
    "doi": Field("string", "The version's DOI, when it has one."),
    "year": Field("string", "The dataset's publication year."),
    f"_{PREFIX}_source_id": Field("string", "The indexed version.", "mdf.source_id"),
}
