"""The YouTube Data API v3 through google-api-python-client, with quota, retries and redaction.

One built service, and one `httplib2.Http` per worker thread passed to `execute(http=…)`
(httplib2 is not thread-safe). The
client's own retries are off (`num_retries=0`): this module retries with capped, jittered
exponential backoff so that every attempt is counted in the quota ledger and none is unbounded.
The API key is never shown: URLs and messages pass through `redact`, and `HttpError` (whose text
carries the request URL) never leaves this module.
"""

import functools
import http.client
import json
import logging
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import httplib2
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from mta_pipeline import config
from mta_pipeline.core.quota import units_charged
from mta_pipeline.core.youtube_api import (
    ApiFailure,
    Kind,
    classify_http_error,
    redact,
    transport_failure,
)

TRANSPORT_ERRORS = (
    OSError,
    socket.timeout,
    http.client.HTTPException,
    httplib2.HttpLib2Error,
)


class RedactKeyFilter(logging.Filter):
    """Strips `key=` values from googleapiclient's own log lines (its retry warnings print URLs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = ()
        return True


for _name in ("googleapiclient.http", "googleapiclient.discovery"):
    logging.getLogger(_name).addFilter(RedactKeyFilter())


@dataclass
class CallRecord:
    """One API call as the ledger and the raw landing zone see it (never with the key)."""

    endpoint: str
    params: dict[str, Any]
    outcome: str
    http_status: int | None
    body: str | None
    at: datetime
    call_id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass
class Budget:
    """Units this run may spend, shared by worker threads; `stop` ends all calls at once."""

    units: int
    spent: int = 0
    stop_reason: ApiFailure | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def try_spend(self, units: int = 1) -> bool:
        with self._lock:
            if self.stop_reason is not None or self.spent + units > self.units:
                return False
            self.spent += units
            return True

    @property
    def remaining(self) -> int:
        return self.units - self.spent

    def refund(self, units: int = 1) -> None:
        """Give back what a call the API refused for quota was charged: it costs nothing."""
        with self._lock:
            self.spent -= units

    def stop(self, failure: ApiFailure) -> None:
        with self._lock:
            self.stop_reason = self.stop_reason or failure


class YouTubeResource(dg.ConfigurableResource):
    """Settings for the YouTube Data API v3: `api_key` (`YOUTUBE_API_KEY`), `api_endpoint`
    (`YOUTUBE_API_ENDPOINT`), `daily_quota` (`MTA_YOUTUBE_DAILY_QUOTA`), `refresh_days`
    (`MTA_YOUTUBE_REFRESH_DAYS`), `concurrency` (`MTA_YOUTUBE_CONCURRENCY`). Values come from
    `definitions.py`; nothing here reads the environment."""

    api_key: str = ""
    api_endpoint: str = config.DEFAULT_YOUTUBE_ENDPOINT
    daily_quota: int = config.DEFAULT_DAILY_QUOTA
    comments_per_video: int = 5
    concurrency: int = config.DEFAULT_YOUTUBE_CONCURRENCY
    refresh_days: int = config.DEFAULT_REFRESH_DAYS
    max_retries: int = 4
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 16.0
    timeout_s: float = 30.0

    def endpoint(self) -> str:
        return (self.api_endpoint.strip() or config.DEFAULT_YOUTUBE_ENDPOINT).rstrip("/")

    def quota_per_day(self) -> int:
        return config.check_positive(config.MTA_YOUTUBE_DAILY_QUOTA, self.daily_quota)

    def refresh_after_days(self) -> int:
        return config.check_positive(config.MTA_YOUTUBE_REFRESH_DAYS, self.refresh_days)

    def workers(self) -> int:
        return config.check_positive(config.MTA_YOUTUBE_CONCURRENCY, self.concurrency)

    def client(self, budget: Budget, record: Callable[[CallRecord], None]) -> "YouTubeClient":
        config.require(config.YOUTUBE_API_KEY, self.api_key)
        return YouTubeClient(self, budget, record)


class YouTubeClient:
    """Calls with per-thread services; every attempt spends one unit and is recorded."""

    def __init__(
        self, settings: YouTubeResource, budget: Budget, record: Callable[[CallRecord], None]
    ) -> None:
        self.settings = settings
        self.budget = budget
        self.record = record
        self._local = threading.local()
        self._rand = random.Random()
        self._service = _built_service(settings.api_key, settings.endpoint())

    def _http(self) -> httplib2.Http:
        http = getattr(self._local, "http", None)
        if http is None:
            http = self._local.http = httplib2.Http(timeout=self.settings.timeout_s)
        return http

    def videos(self, ids: list[str]) -> dict[str, Any] | ApiFailure:
        params = {"part": "snippet,statistics", "id": ",".join(ids)}
        return self._call("videos.list", params, lambda s: s.videos().list(**params))

    def comment_threads(self, vid: str) -> dict[str, Any] | ApiFailure:
        params = {
            "part": "snippet",
            "videoId": vid,
            "order": "relevance",
            "textFormat": "plainText",
            "maxResults": self.settings.comments_per_video,
        }
        return self._call(
            "commentThreads.list", params, lambda s: s.commentThreads().list(**params)
        )

    def _call(
        self, endpoint: str, params: dict[str, Any], make: Callable[[Any], Any]
    ) -> dict[str, Any] | ApiFailure:
        retries = 0
        while True:
            if self.budget.stop_reason is not None:
                return self.budget.stop_reason
            if not self.budget.try_spend():
                return ApiFailure(None, "budget", "no quota left for this run", Kind.QUOTA)
            result, status, body = self._attempt(make)
            outcome = "ok" if not isinstance(result, ApiFailure) else result.reason
            self.record(CallRecord(endpoint, params, outcome, status, body, datetime.now(UTC)))
            if not isinstance(result, ApiFailure):
                return result
            if result.kind in (Kind.QUOTA, Kind.FATAL):
                if units_charged(outcome) == 0:
                    self.budget.refund()
                self.budget.stop(result)
                return result
            limit = 2 if result.kind is Kind.RETRY_TWICE else self.settings.max_retries
            if result.kind not in (Kind.RETRY, Kind.RETRY_TWICE) or retries >= limit:
                return result
            time.sleep(self._backoff(retries))
            retries += 1

    def _backoff(self, retries: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**retries)]."""
        ceiling = min(self.settings.backoff_cap_s, self.settings.backoff_base_s * 2**retries)
        return self._rand.uniform(0, ceiling)

    def _attempt(self, make: Callable[[Any], Any]) -> tuple[Any, int | None, str | None]:
        """One HTTP call: (parsed body or failure, HTTP status, raw body as received)."""
        captured: dict[str, Any] = {}
        request = make(self._service)
        parse = request.postproc

        def keep_raw(resp: Any, content: bytes) -> Any:
            captured["status"], captured["body"] = resp.status, content
            return parse(resp, content)

        request.postproc = keep_raw
        try:
            body = request.execute(http=self._http(), num_retries=0)
            if not isinstance(body, dict):  # the client returns unparsable JSON as a string
                raise ValueError(f"response body is not JSON: {str(body)[:80]!r}")
            return body, captured.get("status"), _text(captured)
        except HttpError as exc:
            failure = classify_http_error(exc.resp.status, exc.content)
            return failure, exc.resp.status, _text({"body": exc.content})
        except ValueError as exc:  # malformed JSON in a 200 response
            return transport_failure(exc), captured.get("status"), _text(captured)
        except TRANSPORT_ERRORS as exc:
            return transport_failure(exc), None, None


@functools.lru_cache(maxsize=8)
def _built_service(api_key: str, endpoint: str) -> Any:
    """The discovery-built service, made once: parsing the bundled discovery document takes
    ~100 ms. Requests made from it are independent; each thread sends them on its own Http."""
    return build(
        "youtube",
        "v3",
        developerKey=api_key,
        http=httplib2.Http(),
        client_options={"api_endpoint": endpoint},
        static_discovery=True,
        cache_discovery=False,
    )


def _text(captured: dict[str, Any]) -> str | None:
    body = captured.get("body")
    if body is None:
        return None
    return body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)


def call_from_line(line: str) -> CallRecord:
    """The CallRecord a `raw_line` holds (the journal replays them after a crash)."""
    data = json.loads(line)
    return CallRecord(
        endpoint=data["endpoint"],
        params=data["params"],
        outcome=data["outcome"],
        http_status=data["http_status"],
        body=data["body"],
        at=datetime.fromisoformat(data["received_at"]),
        call_id=data["call_id"],
    )


def raw_line(call: CallRecord) -> str:
    """A JSON Lines record for the raw landing zone: the body exactly as received, no key."""
    return json.dumps(
        {
            "endpoint": call.endpoint,
            "params": call.params,
            "http_status": call.http_status,
            "outcome": call.outcome,
            "received_at": call.at.isoformat(),
            "call_id": call.call_id,
            "body": call.body,
        },
        ensure_ascii=False,
    )
