"""The HTTP core of the client: one httpx session, bearer token, retries with backoff, errors."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Self

import httpx

from matterhub import __version__
from matterhub.client.errors import HubUnreachable, error_from_response

__all__ = ["DEFAULT_TIMEOUT", "HTTPCore"]

DEFAULT_TIMEOUT = 30.0
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
_RETRY_STATUS = frozenset({500, 502, 503, 504})
_MAX_SLEEP = 8.0


class HTTPCore:
    """Talks HTTP to one hub; the API methods of `Client` are mixins built on `_request`."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        if not base_url or "://" not in base_url:
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.token = token or None
        self.retries = max(0, int(retries))
        self.backoff = max(0.0, float(backoff))
        self._options: dict[str, Any] = {
            "transport": transport,
            "timeout": timeout,
            "retries": retries,
            "backoff": backoff,
        }
        self._http = httpx.Client(
            base_url=self.base_url + "/",
            transport=transport,
            timeout=timeout,
            headers={"User-Agent": f"matterhub-client/{__version__}"},
            follow_redirects=True,
        )
        self._origin = httpx.URL(self.base_url + "/")

    # -- lifecycle -------------------------------------------------------------------------
    def with_token(self, token: str | None) -> Self:
        """A client for the same hub and options with another token (None: anonymous)."""
        return type(self)(self.base_url, token, **self._options)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> HTTPCore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        who = "token" if self.token else "anonymous"
        return f"{type(self).__name__}({self.base_url!r}, {who})"

    # -- requests --------------------------------------------------------------------------
    def _url(self, path: str) -> httpx.URL:
        if "://" in path:
            return httpx.URL(path)
        return self._origin.join(path.lstrip("/"))

    def _headers(self, url: httpx.URL, extra: Any) -> dict[str, str]:
        headers = dict(extra or {})
        same_origin = (url.scheme, url.host, url.port) == (
            self._origin.scheme,
            self._origin.host,
            self._origin.port,
        )
        # The token only ever goes to this hub, never to a host named in a record's files[].url.
        if self.token and same_origin:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        return headers

    def _sleep(self, attempt: int, response: httpx.Response | None = None) -> None:
        delay = self.backoff * (2**attempt)
        if response is not None:
            after = response.headers.get("retry-after", "")
            if after.isdigit():
                delay = max(delay, float(after))
        delay = min(delay, _MAX_SLEEP)
        if delay > 0:
            time.sleep(delay * (0.75 + random.random() / 2))  # jitter: retries don't stampede

    def _request(
        self, method: str, path: str, *, idempotent: bool | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Send one request with retries; return the 2xx/3xx response or raise a `ClientError`.

        Connection failures are retried for every method (nothing reached the hub); 5xx answers
        only for idempotent requests (GET, HEAD, PUT, DELETE, or `idempotent=True`, as searches).
        """
        method = method.upper()
        url = self._url(path)
        kwargs["headers"] = self._headers(url, kwargs.get("headers"))
        if idempotent is None:
            idempotent = method in _IDEMPOTENT
        attempt = 0
        while True:
            try:
                response = self._http.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                retriable = idempotent or isinstance(exc, httpx.ConnectError)
                if retriable and attempt < self.retries:
                    self._sleep(attempt)
                    attempt += 1
                    continue
                raise HubUnreachable(
                    f"cannot reach MatterHub at {self.base_url} ({type(exc).__name__}: {exc}) "
                    f"after {attempt + 1} attempt(s); check the URL and that the hub is running"
                ) from None
            if response.status_code in _RETRY_STATUS and idempotent and attempt < self.retries:
                self._sleep(attempt, response)
                attempt += 1
                continue
            if response.status_code >= 400:
                raise error_from_response(response, attempts=attempt + 1)
            return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        """`_request` and decode the JSON body."""
        return self._request(method, path, **kwargs).json()

    @contextmanager
    def _stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """A streamed response whose status was checked; the body is read by the caller."""
        url = self._url(path)
        kwargs["headers"] = self._headers(url, kwargs.get("headers"))
        try:
            with self._http.stream(method.upper(), url, **kwargs) as response:
                if response.status_code >= 400:
                    response.read()
                    raise error_from_response(response)
                yield response
        except httpx.TransportError as exc:
            raise HubUnreachable(
                f"lost the connection to {self.base_url} ({type(exc).__name__}: {exc})"
            ) from None

    # -- small API calls -------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """The hub's `/health` document."""
        result: dict[str, Any] = self._json("GET", "/health")
        return result

    def whoami(self) -> dict[str, Any]:
        """Who the hub thinks this client is (`authenticated: false` when anonymous)."""
        result: dict[str, Any] = self._json("GET", "/api/whoami")
        return result
