"""Polite HTTP: one client, a per-host rate limit, retries with backoff, clear give-ups."""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlsplit

import httpx

log = logging.getLogger("scripts")

USER_AGENT = (
    "telegram-datasette/0.1 (open-data archive of public Telegram channel previews; "
    "+https://github.com/telegram-datasette/telegram-datasette)"
)

RETRY_STATUSES = {429, 500, 502, 503, 504}

# httpx's timeout bounds each wait for the network, not the whole request: a server that
# sends a byte every few seconds would hold a request for ever. So every request also has
# an overall deadline, checked between the chunks of the body.
REQUEST_DEADLINE = 60.0
# A t.me/s page is under about 300 KB (the largest of the real captures is 223 KB), so
# 5 MB leaves room for a far heavier page while an endless or bloated body stops long
# before it can hurt memory (a body is held in memory, then archived). The cap counts
# bytes after decoding, so a compressed bomb stops there too.
MAX_PAGE_BYTES = 5_000_000


class FetchFailed(Exception):
    """The retry budget is spent; the message says what kept failing."""


class Abandoned(Exception):
    """We stopped reading a response: it passed the deadline or the size cap."""


class TooBig(Abandoned):
    """The body is larger than the cap; `size` is its announced size, or a lower bound."""

    def __init__(self, message: str, size: int):
        super().__init__(message)
        self.size = size


class FileTooBig(FetchFailed):
    """A fetcher made with retry_too_big=False gives up at once on a body over its cap."""

    def __init__(self, message: str, size: int):
        super().__init__(message)
        self.size = size


@dataclass
class Response:
    url: str
    final_url: str
    status: int
    body: bytes
    location: str | None
    fetched_at: str
    duration_ms: int
    attempts: int
    content_type: str | None = None


@dataclass
class Stats:
    requests: int = 0
    retries: int = 0


class RateLimiter:
    """At most `per_second` request starts per host; 0 or less disables it."""

    def __init__(self, per_second: float, clock=time.monotonic, sleep=time.sleep):
        self.interval = 1.0 / per_second if per_second and per_second > 0 else 0.0
        self.next_allowed: dict[str, float] = {}
        self.lock = threading.Lock()
        self.clock, self.sleep = clock, sleep

    def wait(self, host: str) -> None:
        if not self.interval:
            return
        with self.lock:
            now = self.clock()
            start = max(now, self.next_allowed.get(host, now))
            self.next_allowed[host] = start + self.interval
        if start > now:
            self.sleep(start - now)


def retry_after_seconds(value: str | None, default: float) -> float:
    """Retry-After is either seconds or an HTTP date."""
    if not value:
        return default
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def backoff_seconds(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with full jitter (attempt counts from 1)."""
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))


class Fetcher:
    def __init__(
        self,
        *,
        requests_per_second: float = 1.0,
        timeout: float = 30.0,
        max_retries: int = 5,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        max_retry_after: float = 300.0,
        request_deadline: float = REQUEST_DEADLINE,
        max_bytes: int = MAX_PAGE_BYTES,
        user_agent: str = USER_AGENT,
        sleep=time.sleep,
        retry_too_big: bool = True,
    ):
        self.client = httpx.Client(
            headers={"User-Agent": user_agent, "Accept-Language": "en"},
            # No single wait may outlast the deadline of the whole request.
            timeout=min(timeout, request_deadline),
            follow_redirects=False,  # a redirect from /s/NAME means "no public preview"
        )
        self.limiter = RateLimiter(requests_per_second)
        self.request_deadline = request_deadline
        self.max_bytes = max_bytes
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_retry_after = max_retry_after
        self.sleep = sleep
        # Pages: a body over the cap may be a hostile server's endless one, worth a retry.
        # Media files (scripts/media.py): a file over the cap stays over it.
        self.retry_too_big = retry_too_big
        self.stats = Stats()

    def close(self) -> None:
        self.client.close()

    def get(self, url: str) -> Response:
        host = urlsplit(url).netloc
        last_problem = ""
        for attempt in range(1, self.max_retries + 2):
            self.limiter.wait(host)
            self.stats.requests += 1
            started = time.monotonic()
            fetched_at = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
            try:
                with self.client.stream("GET", url) as response:
                    body = self.read_body(response, started)
            except Abandoned as error:
                if isinstance(error, TooBig) and not self.retry_too_big:
                    raise FileTooBig(f"{url}: {error}", error.size) from None
                last_problem = str(error)
                wait = backoff_seconds(attempt, self.backoff_base, self.backoff_cap)
            except (httpx.TransportError, httpx.DecodingError) as error:
                # Connection errors, timeouts and bodies cut short (RemoteProtocolError).
                last_problem = f"{type(error).__name__}: {error}"
                wait = backoff_seconds(attempt, self.backoff_base, self.backoff_cap)
            else:
                duration = int((time.monotonic() - started) * 1000)
                if response.status_code not in RETRY_STATUSES:
                    return Response(
                        url=url,
                        final_url=str(response.url),
                        status=response.status_code,
                        body=body,
                        location=response.headers.get("location"),
                        fetched_at=fetched_at,
                        duration_ms=duration,
                        attempts=attempt,
                        content_type=response.headers.get("content-type"),
                    )
                last_problem = f"HTTP {response.status_code}"
                wait = backoff_seconds(attempt, self.backoff_base, self.backoff_cap)
                if response.status_code == 429 or "retry-after" in response.headers:
                    wait = min(
                        self.max_retry_after,
                        retry_after_seconds(response.headers.get("retry-after"), wait),
                    )
            if attempt > self.max_retries:
                break
            self.stats.retries += 1
            log.debug("%s: %s, retrying in %.1fs (attempt %d)", url, last_problem, wait, attempt)
            self.sleep(wait)
        raise FetchFailed(
            f"gave up on {url} after {self.max_retries + 1} attempts: {last_problem}"
        )

    def read_body(self, response: httpx.Response, started: float) -> bytes:
        """The body, read chunk by chunk; Abandoned past the deadline or the size cap.

        Leaving the `stream` block then closes the connection, so the rest is never read.
        """
        announced = response.headers.get("content-length", "")
        if announced.isdigit() and int(announced) > self.max_bytes:
            raise TooBig(f"the body is announced as {announced} bytes, more than the cap of "
                         f"{self.max_bytes} (max_page_bytes)", int(announced))
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self.max_bytes:
                raise TooBig(f"the body passed the cap of {self.max_bytes} bytes (max_page_bytes); "
                             "stopped reading", size)
            if time.monotonic() - started > self.request_deadline:
                raise Abandoned(f"the response took longer than the deadline of {self.request_deadline:g} s "
                                f"(request_deadline_seconds), {size} bytes read; stopped reading")
            chunks.append(chunk)
        return b"".join(chunks)
