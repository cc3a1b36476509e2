"""Limits and security headers for the whole site, with Datasette's plugin hooks only.

- Every SQLite connection Datasette opens refuses to build a value (string or blob)
  larger than MAX_VALUE_BYTES: `select randomblob(1000000000)` fails at once with
  "string or blob too big" (an ordinary SQL error page or JSON error), where it used to
  return a gigabyte of JSON after a minute and a half, with Datasette at 7.5 GB of memory.
  A result is also limited in columns and in total size, so many rows of big values
  cannot add up to the same.
- No response body goes past MAX_RESPONSE_BYTES, except the database download
  (`/<database>.db`, a file Datasette streams from disk, not something a query builds).
- Every response carries a Content-Security-Policy and the usual companion headers.
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
import weakref

from datasette import hookimpl

# The largest string or blob any SQL on the site may build or read (SQLITE_LIMIT_LENGTH).
# The largest values the data holds are a post's html and raw_html (raw_html is kept only
# for posts the parser did not recognise): the largest message in the real t.me captures
# is 22 KB of HTML; a 4096-character message made only of custom emoji with their markup
# would be some 650 KB. The limit also applies to *reading* a stored value, so it must
# stay well above anything the crawler can store (one bigger value would make every page
# showing its row fail): 4 MiB is six times that extreme. Below it, the largest value a
# query can ask for is 4 MiB (5.3 MiB of base64 in JSON), built in milliseconds.
# The database download is a file Datasette streams from disk, not a SQL value.
MAX_VALUE_BYTES = 4 * 1024 * 1024

# A limit per value alone still lets one query return max_returned_rows (1000) rows of
# many such values: `select zeroblob(N) from <1001 rows>` took Datasette to 5.6 GB with a
# 10 MiB limit, within the 3 s time limit. Two more bounds, on what Python materialises:
# - at most MAX_COLUMNS columns in a result (SQLITE_LIMIT_COLUMN; the widest table,
#   posts, has 49, and a join of posts, media and channels has 100): one row is then at
#   most MAX_COLUMNS * MAX_VALUE_BYTES (measured: 127 copies of a 4 MiB blob in one row,
#   refused by the next bound, peaked at 1.1 GB for 0.3 s);
# - at most MAX_RESULT_BYTES (Python object sizes) of rows fetched by one query, counted
#   by a row factory in front of Datasette's. A page of 1000 posts of 4096 Cyrillic
#   characters each, with their html, is about 30 MB of objects and 54 MB of JSON. Past
#   it the query fails like any SQL error (400, "query result too big").
MAX_COLUMNS = 128
MAX_RESULT_BYTES = 64 * 1024 * 1024

# The largest response body: Datasette's own limit on CSV exports (max_csv_mb, 100 MiB
# by default), for every response. Pages and JSON show at most 1000 rows (the 1000
# longest possible posts are 54 MB of JSON). A stream past the limit is aborted: the
# connection is dropped, so the client sees an incomplete response, never a
# complete-looking cut one. More than that is what the release's files are for.
MAX_RESPONSE_BYTES = 100 * 1024 * 1024

# Datasette's pages need inline scripts and styles (its own templates, the plugins'
# extra_body_script, style attributes), so 'unsafe-inline'; every script, stylesheet and
# fetch is from the site itself: datasette-cluster-map loads Leaflet (datasette-leaflet)
# and markercluster from /-/static-plugins/ and its data from the site's JSON. Images
# may come from anywhere on https: (Telegram's CDN thumbnails, link preview images,
# OpenStreetMap tiles from https://{a,b,c}.tile.openstreetmap.org) and data: URIs.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self' 'unsafe-inline'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' https: data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

# Referrer-Policy: other hosts get the site's origin alone, never a page's path or query
# (so no SQL leaks, which is why Datasette's data views send `no-referrer`); the origin is
# what OpenStreetMap's tile usage policy asks a web page's tile requests to carry.
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
]
_OURS = {name for name, _ in SECURITY_HEADERS}


class ResultTooLarge(sqlite3.DataError):
    """A DatabaseError, so Datasette shows it as a SQL error (400), as it shows the
    "string or blob too big" of SQLITE_LIMIT_LENGTH."""


def budgeted_rows(row_factory):
    """A row factory that counts the bytes of the rows each cursor fetched."""
    used: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
    sizeof = sys.getsizeof

    def factory(cursor, row):
        total = used.get(cursor, 0) + sum(map(sizeof, row))
        if total > MAX_RESULT_BYTES:
            raise ResultTooLarge(f"query result too big: more than {MAX_RESULT_BYTES // (1024 * 1024)} MiB")
        used[cursor] = total
        return row_factory(cursor, row) if row_factory is not None else row

    return factory


@hookimpl
def prepare_connection(conn):
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
    conn.setlimit(sqlite3.SQLITE_LIMIT_COLUMN, MAX_COLUMNS)
    # Datasette set its own row factory (sqlite3.Row) before calling this hook.
    conn.row_factory = budgeted_rows(conn.row_factory)


class ResponseTooLarge(Exception):
    def __init__(self, path: str, limit: int):
        super().__init__(f"Response too large: {path} would send more than {limit:,} bytes")


def with_security_headers(headers) -> list:
    """The response's headers with ours instead of any of the same names (Datasette's
    data views send `Referrer-Policy: no-referrer`)."""
    return [(name, value) for name, value in headers if bytes(name).lower() not in _OURS] + SECURITY_HEADERS


_DOWNLOAD = re.compile(r"/([^/.]+)\.db")


def is_database_download(datasette, scope) -> bool:
    """`/<database>.db`: Datasette's download of the database file, streamed from disk."""
    path = scope.get("path", "")
    base_url = datasette.setting("base_url") or "/"
    if base_url != "/" and path.startswith(base_url):
        path = "/" + path[len(base_url):]
    match = _DOWNLOAD.fullmatch(path)
    if not match:
        return False
    return any(db.route == match.group(1) and not db.is_memory for db in datasette.databases.values())


def too_large_response(scope, error: ResponseTooLarge) -> tuple[int, list, bytes]:
    status = 400
    if scope.get("path", "").endswith(".json"):
        body = json.dumps({"ok": False, "error": str(error), "status": status, "title": None}).encode()
        content_type = b"application/json; charset=utf-8"
    else:
        body = str(error).encode()
        content_type = b"text/plain; charset=utf-8"
    return status, [(b"content-type", content_type), (b"content-length", str(len(body)).encode())], body


def secure_app(app, datasette):
    async def secured(scope, receive, send):
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        limit = None if is_database_download(datasette, scope) else MAX_RESPONSE_BYTES
        state = {"held": None, "started": False, "sent": 0, "tripped": False}

        async def release_held():
            if state["held"] is not None:
                held, state["held"] = state["held"], None
                state["started"] = True
                await send(held)

        async def guarded(message):
            if state["tripped"]:  # whatever the app sends after the cap (an error page) is dropped
                raise ResponseTooLarge(scope.get("path", ""), limit)
            kind = message["type"]
            if kind == "http.response.start":
                message = {**message, "headers": with_security_headers(message.get("headers") or [])}
                if limit is None:
                    state["started"] = True
                    await send(message)
                    return
                length = next((v for k, v in message["headers"] if bytes(k).lower() == b"content-length"), None)
                if length is not None and length.strip().isdigit() and int(length) > limit:
                    state["tripped"] = True
                    raise ResponseTooLarge(scope.get("path", ""), limit)
                # Held back until the first body chunk, so a first chunk past the limit
                # can still be answered with an error instead.
                state["held"] = message
                return
            if kind == "http.response.body" and limit is not None:
                state["sent"] += len(message.get("body", b""))
                if state["sent"] > limit:
                    state["tripped"] = True
                    raise ResponseTooLarge(scope.get("path", ""), limit)
            await release_held()
            await send(message)

        error = None
        try:
            await app(scope, receive, guarded)
        except Exception as raised:
            if not state["tripped"]:
                raise
            error = raised  # the cap, or the app failing while it handled the cap
        if state["tripped"]:
            if not isinstance(error, ResponseTooLarge):
                error = ResponseTooLarge(scope.get("path", ""), limit)
            if state["started"]:
                raise error  # part of the body is out: the server drops the connection
            status, headers, body = too_large_response(scope, error)
            await send({"type": "http.response.start", "status": status, "headers": with_security_headers(headers)})
            await send({"type": "http.response.body", "body": body})
            return
        await release_held()

    return secured


@hookimpl(trylast=True)  # the last wrapper applied is the outermost: it sees every response
def asgi_wrapper(datasette):
    def wrap(app):
        return secure_app(app, datasette)

    return wrap
