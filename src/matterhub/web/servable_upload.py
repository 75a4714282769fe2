"""A structure file as the input of the servable page's "try it" form.

A servable whose input is one `structure` (a molecule or a crystal, or a pipeline starting with
one) can be tried with a file instead of JSON: an XYZ file holding one or several molecules (as
ASE and most codes write them, frames one after another), or one CIF, POSCAR or ASE/pymatgen
JSON structure. Several XYZ frames run one after another, each as its own run through the run
service with the browser's identity (the same checks, limits and provenance as the API's), and
the page shows one row a molecule. The file's size and the number of frames are bounded.
"""

from __future__ import annotations

from typing import Any

from matterhub.core.errors import InvalidInput, PayloadTooLarge

__all__ = ["MAX_FILE_BYTES", "MAX_FRAMES", "structure_inputs", "xyz_frames"]

MAX_FILE_BYTES = 4 * 1024**2
MAX_FRAMES = 200
FIELD = "upload"


def xyz_frames(text: str, limit: int = MAX_FRAMES) -> list[str]:
    """Split XYZ text into its frames (count line, comment line, one line an atom).

    Raises:
        InvalidInput: a count line that is not a number, a frame cut short, or over `limit`
            frames (naming the form's `upload` field).
    """
    lines = text.splitlines()
    frames: list[str] = []
    at = 0
    while at < len(lines):
        if not lines[at].strip():
            at += 1
            continue
        head = lines[at].strip()
        if not head.isdigit():
            where = f"line {at + 1}"
            raise InvalidInput(
                f"{where} should be the atom count of a molecule, not {head[:40]!r}", field=FIELD
            )
        count = int(head)
        end = at + 2 + count
        if count == 0 or end > len(lines):
            raise InvalidInput(
                f"the molecule at line {at + 1} says {count} atoms but the file ends first"
                if count
                else f"the molecule at line {at + 1} has no atoms",
                field=FIELD,
            )
        if len(frames) == limit:
            raise InvalidInput(f"more than {limit} molecules in one file", field=FIELD)
        frames.append("\n".join(lines[at:end]) + "\n")
        at = end
    if not frames:
        raise InvalidInput("the file holds no molecule", field=FIELD)
    return frames


def _title(frame: str, index: int) -> str:
    """A frame's name for the results table: `name=` from extended XYZ, else the comment."""
    comment = frame.splitlines()[1].strip() if frame.count("\n") > 1 else ""
    for token in comment.split():
        key, _, value = token.partition("=")
        if key == "name" and value:
            return value.strip('"')
    return comment[:60] or f"molecule {index + 1}"


def structure_inputs(
    data: bytes, filename: str, input_type: dict[str, Any]
) -> list[dict[str, str]]:
    """The runs an uploaded file asks for: `[{"title", "input"}]`, one a structure.

    Raises:
        InvalidInput: the servable does not take one structure, or the file is not text.
        PayloadTooLarge: the file is over MAX_FILE_BYTES.
    """
    if input_type.get("type") != "structure":
        shown = input_type.get("type") or "unknown"
        raise InvalidInput(
            f"this servable's input is a {shown}, not a structure: give it as JSON", field=FIELD
        )
    if len(data) > MAX_FILE_BYTES:
        raise PayloadTooLarge(f"the file is over {MAX_FILE_BYTES // 1024**2} MiB", field=FIELD)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{filename or 'the file'} is not UTF-8 text", field=FIELD) from None
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if not first:
        raise InvalidInput("the file is empty", field=FIELD)
    if not first.isdigit():  # CIF, POSCAR, JSON: one structure, checked by the run's validation
        return [{"title": filename or "structure", "input": text}]
    frames = xyz_frames(text)
    return [{"title": _title(frame, i), "input": frame} for i, frame in enumerate(frames)]
