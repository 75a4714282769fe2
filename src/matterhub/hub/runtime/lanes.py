"""Synchronous runs from the event loop: concurrent calls of one version share worker frames.

A run route awaits `LocalExecutor.run_async`, which queues the call in the version's *lane*
(one per pool and event loop). Up to `replicas` drainers per lane take the waiting calls —
those that arrived while the worker was busy, up to `FRAME_CALLS` — and send them as one frame,
awaiting the reply on the pipe (`_Worker.call_async`). No thread is involved while a worker is
warm and idle, and under load the round trip is paid once per frame, not once per call.

Fault isolation is kept: when a frame of several callers' calls fails as a whole (the worker
crashed, ran out of memory or overran its timeout), each caller's calls are sent again on their
own, on a fresh worker, so one caller's bad input fails only that caller's run.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from matterhub.core.errors import ExecutorError
from matterhub.hub.runtime.base import Call, CallResult

__all__ = ["FRAME_CALLS", "Lane", "Waiting", "lane_for"]

FRAME_CALLS = 64  # calls per frame at most (as for async tasks)

Exchange = Callable[[list[Call], bool], Awaitable[list[CallResult]]]


@dataclass(slots=True)
class Waiting:
    """One caller's calls and the future its answer goes to."""

    calls: list[Call]
    debug: bool
    future: asyncio.Future[list[CallResult]]


@dataclass(slots=True)
class Lane:
    """The calls of one version waiting on one event loop, and how many drainers run."""

    waiting: deque[Waiting] = field(default_factory=deque)
    drainers: int = 0
    pending: int = 0  # calls waiting (read by the autoscaler from another thread)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def submit(
        self, calls: list[Call], debug: bool, replicas: int, exchange: Exchange
    ) -> list[CallResult]:
        """Queue `calls` and await their results (a drainer is started if there is room)."""
        loop = asyncio.get_running_loop()
        entry = Waiting(calls, debug, loop.create_future())
        self.waiting.append(entry)
        self.pending += len(calls)
        if self.drainers < max(1, replicas):
            self.drainers += 1
            task = loop.create_task(self._drain(exchange))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return await entry.future

    def _take(self) -> list[Waiting]:
        """The next frame's callers: same `debug` as the first, at most FRAME_CALLS calls."""
        batch: list[Waiting] = []
        count = 0
        while self.waiting:
            entry = self.waiting[0]
            if entry.future.done():  # its caller went away
                self.pending -= len(self.waiting.popleft().calls)
                continue
            if batch and (entry.debug != batch[0].debug or count + len(entry.calls) > FRAME_CALLS):
                break
            batch.append(self.waiting.popleft())
            self.pending -= len(entry.calls)
            count += len(entry.calls)
        return batch

    async def _drain(self, exchange: Exchange) -> None:
        try:
            while self.waiting:
                batch = self._take()
                if batch:
                    await self._send(batch, exchange)
        finally:
            self.drainers -= 1

    async def _send(self, batch: list[Waiting], exchange: Exchange) -> None:
        calls = [call for entry in batch for call in entry.calls]
        try:
            results = await exchange(calls, batch[0].debug)
        except ExecutorError as exc:
            if len(batch) > 1:
                for entry in batch:  # one caller's input may be the cause: each on its own
                    await self._send([entry], exchange)
                return
            _settle(batch[0].future, error=exc)
            return
        except BaseException as exc:
            for entry in batch:
                _settle(entry.future, error=exc)
            raise
        start = 0
        for entry in batch:
            _settle(entry.future, results[start : start + len(entry.calls)])
            start += len(entry.calls)


def _settle(
    future: asyncio.Future[list[CallResult]],
    value: list[CallResult] | None = None,
    *,
    error: BaseException | None = None,
) -> None:
    if future.done():
        return
    if isinstance(error, asyncio.CancelledError):
        future.cancel()
    elif error is not None:
        future.set_exception(error)
    else:
        future.set_result(value or [])


def lane_for(lanes: weakref.WeakKeyDictionary[Any, Lane]) -> Lane:
    """The lane of the running event loop (created on first use)."""
    loop = asyncio.get_running_loop()
    lane = lanes.get(loop)
    if lane is None:
        lane = lanes[loop] = Lane()
    return lane
