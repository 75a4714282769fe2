"""The worker frame format both ways (host `frames.py`, worker `worker.py`) and the stored form
of arrays in run records (`hub/arrays.py`): numbers travel and rest as their bytes."""

from __future__ import annotations

import collections
import datetime
import enum
from typing import Any

import orjson
import pytest

from matterhub.hub import arrays
from matterhub.hub.runtime import frames, worker

np = pytest.importorskip("numpy")


def _host_to_worker(value: Any, as_arrays: bool) -> Any:
    frame = frames.encode(value)
    (size,) = frames._HEADER.unpack_from(frame)
    assert size == len(frame) - 4
    return worker.decode(bytearray(frame[4:]), as_arrays)


def _worker_to_host(value: Any) -> Any:
    frame = b"".join(bytes(p) for p in worker.encode(value))
    return frames.decode(memoryview(frame)[4:])


def test_arrays_cross_as_bytes_and_come_out_equal_with_their_dtype() -> None:
    image = np.arange(32 * 32, dtype=np.float32).reshape(1, 32, 32, 1) / 7
    value = {"calls": [{"inputs": image, "parameters": {"k": np.int64(3)}}], "debug": False}
    frame = frames.encode(value)
    # 4 kB of float32 and a short JSON header, not ~20 characters a number.
    assert len(frame) < image.nbytes + 300
    got = _host_to_worker(value, as_arrays=True)["calls"][0]
    assert got["inputs"].dtype == np.float32 and got["inputs"].shape == image.shape
    assert np.array_equal(got["inputs"], image)
    assert got["inputs"].flags.writeable  # torch.as_tensor takes it without a warning
    assert got["parameters"] == {"k": 3}
    # A python servable gets lists, as from JSON, with the same numbers.
    as_lists = _host_to_worker(value, as_arrays=False)["calls"][0]["inputs"]
    assert as_lists == image.tolist()


def test_every_dtype_shape_and_layout_round_trips_both_ways() -> None:
    cases = [
        np.arange(6, dtype=np.int64).reshape(2, 3).T,  # not C-contiguous
        np.array([True, False]),
        np.zeros((0, 3)),
        np.arange(5, dtype=np.uint8),
        np.linspace(0, 1, 7, dtype=np.float64),
        np.arange(3, dtype=">f8"),  # big-endian: sent as a list
    ]
    got = _host_to_worker({"x": cases}, as_arrays=True)["x"]
    for sent, back in zip(cases, got, strict=True):
        assert np.asarray(back).tolist() == sent.tolist()
    reply = {"results": [{"ok": True, "output": [c, {"s": np.float32(0.5)}]} for c in cases]}
    for sent, result in zip(cases, _worker_to_host(reply)["results"], strict=True):
        assert np.asarray(result["output"][0]).tolist() == sent.tolist()
        assert result["output"][1] == {"s": 0.5}
    assert _host_to_worker({"x": np.zeros((2, 0))}, as_arrays=False)["x"] == [[], []]


def test_a_frame_without_arrays_is_plain_json() -> None:
    value = {"calls": [{"inputs": [1, 2.5, "a", None], "parameters": {}}]}
    frame = frames.encode(value)
    assert frame[8:] == orjson.dumps(value)
    assert _host_to_worker(value, as_arrays=True) == value


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"dtype": "<f8", "shape": [100], "buffer": [0, 800]}, "outside the frame"),
        ({"dtype": "<f8", "shape": [1], "buffer": [-8, 8]}, "outside the frame"),
        ({"dtype": "|O", "shape": [1], "buffer": [0, 8]}, "dtype"),
    ],
)
def test_a_reply_that_points_outside_its_frame_or_at_objects_is_refused(
    spec: dict[str, Any], reason: str
) -> None:
    text = orjson.dumps({"results": [{"ok": True, "output": {frames.TAG: spec}}]})
    body = frames._HEADER.pack(len(text)) + text + bytes(8)
    with pytest.raises(ValueError, match=reason):
        frames.decode(body)


def test_stored_arrays_are_typed_json_and_load_back_equal() -> None:
    value = {"y": [np.ones((2, 2), np.float32), np.arange(3)], "n": np.float64(2.5), "t": (1, 2)}
    kept = arrays.stored(value)
    text = orjson.dumps(kept)  # JSON-ready as it is
    assert b"__ndarray__" in text and kept["n"] == 2.5 and kept["t"] == [1, 2]
    back = arrays.loaded(orjson.loads(text))
    assert back["y"][0].dtype == np.float32 and np.array_equal(back["y"][0], value["y"][0])
    assert back["y"][1].tolist() == [0, 1, 2]
    # Plain values pass unchanged.
    assert arrays.loaded(arrays.stored([[1.0, 2.0], {"a": "b"}])) == [[1.0, 2.0], {"a": "b"}]


def test_an_array_hashes_by_its_dtype_shape_and_bytes() -> None:
    from matterhub.hub.cache import digest

    a = np.arange(6.0).reshape(2, 3)
    assert digest(a) == digest(a.copy()) == digest(np.asfortranarray(a))
    assert digest(a) != digest(a.astype(np.float32)) != digest(a.reshape(3, 2))
    assert digest({"x": a}) != digest({"x": a + 1e-12})
    assert digest([1, 2.5]) == digest((1, 2.5))  # plain values: their canonical JSON
    assert digest(np.zeros((0, 2))) != digest(np.zeros((2, 0)))


class _Colour(enum.IntEnum):
    RED = 1


class _Text(str):
    pass


@pytest.mark.parametrize(
    "output",
    [
        1.0,
        [0.1, -0.0, 1e-300, 2**70, True, None, "é\u2028\"'"],
        [float("nan"), float("inf"), -float("inf")],
        {"a": (1, 2, [3, (4,)]), "b": {"c": [], "d": {}}},
        {2: "int", True: "bool", None: "none", 1.5: "float", float("nan"): "nan"},
        [{"deep": {2: [{"x": 1}]}}],
        {"k": _Colour.RED, "s": _Text("t"), "f": np.float64(0.25), "g": np.float64("nan")},
        {_Text("key"): 1},
        collections.OrderedDict([("z", 1), ("a", 2)]),
        [np.float32(0.5), np.int64(3), np.bool_(True)],
        {"rows": np.arange(6, dtype=np.float32).reshape(2, 3), "n": 2},
        datetime.date(2026, 12, 7),
    ],
)
def test_a_reply_json_can_write_as_it_is_frames_as_the_walk_does(output: Any) -> None:
    """`worker.encode` skips its walk for plain replies; the bytes must not change."""
    from matterhub.hub import shim

    reply = {"results": [{"ok": True, "output": output, "wall_s": 1e-5}], "recycle": False}
    fast = b"".join(bytes(p) for p in worker.encode(reply, shim.jsonable))
    walked = b"".join(bytes(p) for p in worker._walked(reply, shim.jsonable))
    assert fast == walked  # (NaN included: the host refuses it either way, as before)


def test_a_reply_that_contains_itself_fails_as_before() -> None:
    cycle: list[Any] = [1.0]
    cycle.append(cycle)
    with pytest.raises(RecursionError):
        worker.encode({"results": [{"ok": True, "output": cycle}]})
