"""Scaling with demand: replica bounds, what an executor observes, and the policy that decides.

`Autoscaler.decide` is a pure function of the bounds, one observation of a version's pool and
the time: it says how many replicas the pool should have. The same policy drives the local
executor (worker processes) and Ray (actors); `ScaleLoop` asks an executor to `observe` its
pools every `interval_s` and to `resize` the ones whose count should change.

Policy, per version:
- demand is the calls in flight plus the calls waiting for a replica;
- a replica should carry one call and at most `target_queue` waiting ones, so the replicas
  needed are ceil(demand / (1 + target_queue)); a latency target (p50 or p99 ms over the last
  few seconds) above its goal while calls wait asks for one more replica than there are;
- where replicas share this machine's cores (the local executor) and their calls are CPU-bound
  (each busy worker runs or waits for a core most of the time: /proc schedstat), no more
  replicas than cores — more would only queue for the CPU; while that is not yet measured, no
  growth past the cores; I/O-bound calls (waiting on anything but the CPU) are not capped;
- up at once, to at most `max_replicas`; down only after the pool needed fewer replicas than
  it has for `scale_down_idle_s`, and never below `min_replicas` (those are kept warm).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from matterhub.core.errors import InvalidInput

__all__ = [
    "Autoscaler",
    "Bounds",
    "LatencyWindow",
    "Observation",
    "ScaleLoop",
    "ScalingDefaults",
    "percentile",
]

log = logging.getLogger(__name__)
_FIELDS = ("min_replicas", "max_replicas", "target_queue", "target_p50_ms", "target_p99_ms")
LATENCY_WINDOW_S = 10.0


@dataclass(frozen=True, slots=True)
class Bounds:
    """A version's replica bounds and targets (what `Servable.scaling` holds, clamped)."""

    min_replicas: int = 0
    max_replicas: int = 1
    target_queue: float = 1.0  # waiting calls per replica before another one is added
    target_p50_ms: float | None = None
    target_p99_ms: float | None = None

    def public(self) -> dict[str, Any]:
        """As JSON."""
        return {name: getattr(self, name) for name in _FIELDS}


@dataclass(frozen=True, slots=True)
class ScalingDefaults:
    """The server's defaults and caps for replica bounds (from settings)."""

    max_replicas_cap: int = 4
    min_replicas: int = 0
    max_replicas: int = 1
    target_queue: float = 1.0
    max_target_ms: float = 3_600_000.0

    def bounds(self, *layers: Mapping[str, Any] | None) -> Bounds:
        """Bounds from `layers` (later ones win: document options, then the stored scaling).

        Values are validated (InvalidInput naming the field) and clamped to the server's cap.
        A layer's legacy `replicas` means `max_replicas`.
        """
        merged: dict[str, Any] = {
            "min_replicas": self.min_replicas,
            "max_replicas": self.max_replicas,
            "target_queue": self.target_queue,
            "target_p50_ms": None,
            "target_p99_ms": None,
        }
        for layer in layers:
            if not layer:
                continue
            if "replicas" in layer and "max_replicas" not in layer:
                merged["max_replicas"] = layer["replicas"]
            merged.update({k: layer[k] for k in _FIELDS if k in layer})
        return self.check(merged, clamp=True)

    def check(self, values: Mapping[str, Any], *, clamp: bool = False) -> Bounds:
        """Validated bounds; past the cap is an error unless `clamp` (then it is lowered)."""
        unknown = sorted(set(values) - set(_FIELDS))
        if unknown:
            raise InvalidInput(f"unknown scaling field {unknown[0]!r}", field=unknown[0])
        low = _count(values.get("min_replicas", self.min_replicas), "min_replicas")
        high = _count(values.get("max_replicas", self.max_replicas), "max_replicas")
        if high < 1:
            raise InvalidInput("max_replicas must be at least 1", field="max_replicas")
        if high > self.max_replicas_cap:
            if not clamp:
                raise InvalidInput(
                    f"max_replicas {high} is above this hub's cap of {self.max_replicas_cap}",
                    field="max_replicas",
                )
            high = self.max_replicas_cap
        if low > high:
            if not clamp:
                raise InvalidInput(
                    f"min_replicas {low} is above max_replicas {high}", field="min_replicas"
                )
            low = high
        queue = values.get("target_queue", self.target_queue)
        if isinstance(queue, bool) or not isinstance(queue, int | float) or not 0 <= queue <= 1000:
            raise InvalidInput("target_queue must be a number from 0 to 1000", field="target_queue")
        targets: dict[str, float | None] = {}
        for name in ("target_p50_ms", "target_p99_ms"):
            value = values.get(name)
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not 0 < value <= self.max_target_ms
            ):
                raise InvalidInput(
                    f"{name} must be a number of milliseconds above 0 and at most "
                    f"{self.max_target_ms:g}, or null",
                    field=name,
                )
            targets[name] = float(value) if value is not None else None
        return Bounds(low, high, float(queue), targets["target_p50_ms"], targets["target_p99_ms"])


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1000:
        raise InvalidInput(f"{name} must be a whole number from 0 to 1000", field=name)
    return value


@dataclass(frozen=True, slots=True)
class Observation:
    """One look at a version's pool: its replicas and the calls on and waiting for them."""

    replicas: int  # started or starting
    in_flight: int = 0  # calls being run by a replica
    waiting: int = 0  # calls queued for a replica
    p50_ms: float | None = None  # recent end-to-end latency (queue included)
    p99_ms: float | None = None
    # Whether busy replicas each want a whole core (None: not measured yet), and the cores
    # they share; None where replicas do not share this machine's cores (Ray).
    cpu_bound: bool | None = None
    cores: int | None = None


class Autoscaler:
    """The scaling policy (module docstring); keeps, per version, when it last needed more."""

    def __init__(self, *, scale_down_idle_s: float = 30.0) -> None:
        self.scale_down_idle_s = scale_down_idle_s
        self._needed_at: dict[str, float] = {}  # key → last time all replicas were needed

    def needed(self, bounds: Bounds, seen: Observation) -> int:
        """Replicas the current demand asks for (within the bounds, no idle delay)."""
        demand = seen.in_flight + seen.waiting
        want = math.ceil(demand / (1.0 + bounds.target_queue)) if demand else 0
        slow = (
            bounds.target_p50_ms is not None
            and seen.p50_ms is not None
            and seen.p50_ms > bounds.target_p50_ms
        ) or (
            bounds.target_p99_ms is not None
            and seen.p99_ms is not None
            and seen.p99_ms > bounds.target_p99_ms
        )
        if slow and seen.waiting > 0:
            want = max(want, seen.replicas + 1)
        if seen.cores and seen.cpu_bound is not False:
            # CPU-bound replicas past the cores only queue for them (and slow every call):
            # at most one per core, or no more than there are until it is measured.
            want = min(want, seen.cores if seen.cpu_bound else max(seen.cores, seen.replicas))
        return max(bounds.min_replicas, min(bounds.max_replicas, want))

    def decide(self, key: str, bounds: Bounds, seen: Observation, now: float) -> int:
        """How many replicas `key`'s pool should have now."""
        want = self.needed(bounds, seen)
        current = seen.replicas
        if want >= current or key not in self._needed_at:
            self._needed_at[key] = now
        if want >= current:
            return min(max(want, bounds.min_replicas), bounds.max_replicas)
        if current > bounds.max_replicas:  # the bounds were lowered: at once
            return bounds.max_replicas
        if now - self._needed_at[key] >= self.scale_down_idle_s:
            self._needed_at[key] = now
            return want
        return current

    def forget(self, key: str) -> None:
        """Drop what is kept of a pool that went away."""
        self._needed_at.pop(key, None)


class LatencyWindow:
    """Recent latencies (ms) with their times; percentiles over the last few seconds."""

    def __init__(self, size: int = 2048) -> None:
        self._samples: deque[tuple[float, float]] = deque(maxlen=size)

    def add(self, ms: float, now: float | None = None) -> None:
        """Record one latency."""
        self._samples.append((time.monotonic() if now is None else now, ms))

    def values(self, now: float | None = None, window_s: float | None = None) -> list[float]:
        """The latencies of the last `window_s` seconds (all kept ones when None)."""
        if window_s is None:
            return [ms for _, ms in list(self._samples)]
        since = (time.monotonic() if now is None else now) - window_s
        return [ms for at, ms in list(self._samples) if at >= since]

    def percentiles(
        self, now: float | None = None, window_s: float | None = LATENCY_WINDOW_S
    ) -> tuple[float | None, float | None]:
        """(p50, p99) of the window, or (None, None) when it is empty."""
        values = sorted(self.values(now, window_s))
        return percentile(values, 50), percentile(values, 99)


def percentile(ordered: list[float], q: float) -> float | None:
    """The `q`th percentile of sorted values (nearest rank), None when empty."""
    if not ordered:
        return None
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return round(ordered[rank], 3)


class ScaleLoop:
    """Every `interval_s`: observe an executor's pools and resize those the policy says to."""

    def __init__(
        self,
        observe: Callable[[], dict[str, tuple[Bounds, Observation]]],
        resize: Callable[[str, int], None],
        policy: Autoscaler,
        *,
        interval_s: float = 0.5,
        name: str = "hub-autoscale",
    ) -> None:
        self._observe = observe
        self._resize = resize
        self.policy = policy
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> ScaleLoop:
        """Start the loop's thread."""
        self._thread.start()
        return self

    def step(self, now: float | None = None) -> dict[str, int]:
        """One pass: the pools resized and their new replica counts."""
        now = time.monotonic() if now is None else now
        changed: dict[str, int] = {}
        for key, (bounds, seen) in self._observe().items():
            want = self.policy.decide(key, bounds, seen, now)
            if want != seen.replicas:
                self._resize(key, want)
                changed[key] = want
        return changed

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.step()
            except Exception:  # a failed start must not end scaling for every servable
                log.exception("autoscaling pass failed")

    def stop(self) -> None:
        """Stop the loop."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
