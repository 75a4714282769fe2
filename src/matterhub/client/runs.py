"""Client methods to run servables, named and shaped as DLHub's `DLHubClient.run`."""

from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent.futures import Future
from os import PathLike
from typing import Any

from matterhub.client.base import HTTPCore
from matterhub.client.errors import APIError
from matterhub.client.run_bodies import (
    MSGPACK,
    decode,
    encode_binary,
    file_parts,
    find_paths,
    request_json,
)
from matterhub.core.servables import parse_servable_ref

__all__ = ["RemoteServableError", "RunMethods", "TaskPending"]

_PENDING = ("received", "waiting", "running")
_MAX_WAIT_S = 30.0  # the hub's bound on `GET /api/batches/{id}?wait=`


class RemoteServableError(Exception):
    """The servable raised (or its worker crashed or timed out) on the hub."""

    def __init__(self, error_type: str, message: str, task_id: str | None = None) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message
        self.task_id = task_id


class TaskPending(Exception):
    """The task has not finished yet."""


def _raise_remote(exc: APIError) -> None:
    if exc.status == 424:
        body = exc.body if isinstance(exc.body, dict) else {}
        error = body.get("exception") or {}
        raise RemoteServableError(
            str(error.get("type")), str(error.get("message")), body.get("task_id")
        ) from None
    raise exc


class RunMethods(HTTPCore):
    """Run servables synchronously, asynchronously or in batches; follow tasks."""

    def run(
        self,
        name: str,
        inputs: Any,
        parameters: dict[str, Any] | None = None,
        asynchronous: bool = False,
        debug: bool = False,
        validate_input: bool = False,
        async_wait: float = 0.2,
        timeout: float | None = None,
        *,
        version: str | None = None,
        files: Mapping[str, str | PathLike[str]] | None = None,
        binary: bool = False,
    ) -> Any:
        """Run `owner/name` on `inputs`: the output, a Future (asynchronous) or (output, meta).

        `validate_input` also checks the input client-side against the published type first
        (the hub always checks it). A servable's exception is raised as RemoteServableError.

        File inputs are uploaded: a `pathlib.Path` anywhere in `inputs`, or `files={part: path}`
        named in `inputs` as `{"upload": part}` (one file and `inputs=None`: it is the input).
        `binary=True` sends numpy arrays as `.npy` (a lone array) or msgpack instead of JSON
        lists, and returns arrays the servable declares as ndarray as numpy arrays.
        """
        owner, servable = parse_servable_ref(name)
        inputs, uploads = find_paths(inputs)
        uploads_all: dict[str, str | PathLike[str]] = {**uploads, **(files or {})}
        if validate_input:
            from matterhub.core.types import validate

            described = self.describe_servable(name, version)  # type: ignore[attr-defined]
            validate(inputs, described["document"]["servable"]["methods"]["run"]["input"])
        body = {
            "inputs": inputs,
            "parameters": parameters,
            "asynchronous": asynchronous,
            "debug": debug,
            "version": version,
        }
        try:
            answer = self._post_run(
                f"/api/servables/{owner}/{servable}/run", body, uploads_all, binary
            )
        except APIError as exc:
            _raise_remote(exc)
        if asynchronous:
            return self._future(answer["task_id"], async_wait, timeout)
        if debug:
            return answer["output"], answer.get("metadata", {})
        return answer["output"]

    def _post_run(
        self,
        path: str,
        body: dict[str, Any],
        uploads: Mapping[str, str | PathLike[str]],
        binary: bool,
    ) -> Any:
        """POST a run as multipart (uploads), `.npy`/msgpack (`binary`) or JSON; decode it."""
        headers = {"Accept": f"{MSGPACK}, application/json"} if binary else {}
        if uploads:
            fields = {k: v for k, v in body.items() if v is not None and v is not False}
            with file_parts(uploads) as parts:
                response = self._request(
                    "POST", path, data={"request": request_json(fields)}, files=parts,
                    headers=headers,
                )  # fmt: skip
        elif binary:
            content, media, params = encode_binary(body)
            headers["Content-Type"] = media
            response = self._request("POST", path, content=content, params=params, headers=headers)
        else:
            response = self._request("POST", path, json=body)
        return decode(response.headers.get("content-type", ""), response.content)

    def _future(self, task_id: str, interval: float, timeout: float | None) -> Future[Any]:
        future: Future[Any] = Future()
        future.task_id = task_id  # type: ignore[attr-defined]

        def poll() -> None:
            try:
                result = self.wait_for_task(task_id, interval=interval, timeout=timeout)
            except BaseException as exc:
                if not future.cancelled():  # a cancelled future (`run --async`) takes nothing
                    future.set_exception(exc)
            else:
                if not future.cancelled():
                    future.set_result(result)

        import threading

        threading.Thread(target=poll, name=f"task-{task_id[:8]}", daemon=True).start()
        return future

    def get_task_status(self, task_id: str) -> dict[str, Any]:
        """`{task_id, status, result?, exception?, …}` (received, running, success, failed)."""
        found: dict[str, Any] = self._json("GET", f"/api/tasks/{task_id}")
        return found

    def get_result(self, task_id: str, verbose: bool = False) -> Any:
        """The output of a finished task (with its status document when `verbose`).

        Raises:
            TaskPending: not finished yet.
            RemoteServableError: the task failed.
        """
        status = self.get_task_status(task_id)
        if status["status"] in _PENDING:
            raise TaskPending(f"task {task_id} is {status['status']}")
        if status["status"] == "failed":
            exc = status.get("exception") or {}
            raise RemoteServableError(str(exc.get("type")), str(exc.get("message")), task_id)
        return (status.get("result"), status) if verbose else status.get("result")

    def get_provenance(self, task_id: str) -> dict[str, Any]:
        """Servable version, environment hash, input hash, parameters, output hash, timings."""
        found: dict[str, Any] = self._json("GET", f"/api/tasks/{task_id}/provenance")
        return found

    def wait_for_task(
        self, task_id: str, *, interval: float = 0.2, timeout: float | None = None
    ) -> Any:
        """Poll until the task finishes; its output, or RemoteServableError."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                return self.get_result(task_id)
            except TaskPending:
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"task {task_id} unfinished after {timeout} s") from None
                time.sleep(interval)

    def run_batch(
        self,
        name: str,
        inputs: list[Any],
        parameters: dict[str, Any] | None = None,
        *,
        wait: bool = False,
        timeout: float | None = None,
        version: str | None = None,
        binary: bool = False,
    ) -> dict[str, Any]:
        """Queue one task per input: `{batch_id, task_ids}`; with `wait`, the finished status.

        `binary=True` sends the inputs as msgpack, numpy arrays as their bytes, and (with
        `wait`) gets the results the same way, arrays as numpy arrays.
        """
        owner, servable = parse_servable_ref(name)
        body = {"inputs": inputs, "parameters": parameters, "version": version}
        path = f"/api/servables/{owner}/{servable}/batch"
        if binary:
            content, media, _ = encode_binary(body, lone_array=False)
            response = self._request("POST", path, content=content, headers={"Content-Type": media})
            queued: dict[str, Any] = response.json()
        else:
            queued = self._json("POST", path, json=body)
        if not wait:
            return queued
        return self.wait_for_batch(queued["batch_id"], timeout=timeout, binary=binary)

    def wait_for_batch(
        self, batch_id: str, *, timeout: float | None = None, binary: bool = False
    ) -> dict[str, Any]:
        """The batch's status once it is done (long-polled: answered as soon as it finishes).

        `binary=True`: results as msgpack, arrays as numpy arrays.

        Raises:
            TimeoutError: not done within `timeout` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = _MAX_WAIT_S if deadline is None else deadline - time.monotonic()
            wait = max(0.0, min(_MAX_WAIT_S, left))
            asked = time.monotonic()
            status = self.get_batch_status(batch_id, wait=wait, binary=binary)
            if status["done"]:
                return status
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"batch {batch_id} unfinished after {timeout} s")
            if time.monotonic() - asked < min(wait, 0.2):
                time.sleep(0.2)  # a hub that does not wait (older): poll, as before

    def get_batch_status(
        self, batch_id: str, *, wait: float = 0.0, binary: bool = False
    ) -> dict[str, Any]:
        """`{total, done, counts, tasks: {task_id: {status, result?, exception?}}}`.

        With `wait` (seconds, at most 30) the hub answers when the batch is done or the time
        has passed, whichever comes first. `binary=True`: as msgpack, arrays as numpy arrays.
        """
        options: dict[str, Any] = {}
        if wait:  # the hub holds the request up to `wait`
            options = {"params": {"wait": f"{wait:.3f}"}, "timeout": wait + 30.0}
        if not binary:
            found: dict[str, Any] = self._json("GET", f"/api/batches/{batch_id}", **options)
            return found
        accept = {"Accept": f"{MSGPACK}, application/json"}
        response = self._request("GET", f"/api/batches/{batch_id}", headers=accept, **options)
        found = decode(response.headers.get("content-type", ""), response.content)
        return found
