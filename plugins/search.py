"""Stemmed search everywhere Datasette searches the posts.

- `stem_query(text)`: the FTS5 expression for what a person typed (stems, ё→е,
  phrases, prefix*, OR/AND/NOT/NEAR; punctuation never makes an error). Used by
  the `search` canned query in metadata.yml.
- `escape_fts(text)`: Datasette's own function, which the table search box
  (`/telegram/posts?_search=`) and datasette-search-all's `/-/search` (which calls
  the table's JSON with `_search=`) put around the query, is replaced by the
  same stemming on databases whose `posts_fts` is the stemmed index. The
  person's own words stay in the search box and in "search matches ...".
- Searches skip Datasette's facet *suggestions* (`_nosuggest=1`): on a search
  they cost seconds on a large table (one query per column), and suggest nothing
  useful. JSON searches (what datasette-search-all asks for) also skip the
  metadata's default facets unless `_facet=` asks for some (`_nofacet=1`).
- The `snippet` column of the canned query shows its `<mark>` highlights as HTML
  (everything else in it escaped).
- A table search on the published (immutable) file stays fast for common words
  (`FastSearch`): Datasette counts the matches by looking up every matching row
  of `posts`, and sorts them by date by reading every one; for a word in 10% of a
  million posts that is 100-200 ms. When the SQL is exactly Datasette's plain
  search (no other filter, the default date sort), the count is the full-text
  index's own (the same number: the index holds exactly the posts, nothing is
  queued) and, when the word matches many posts, the newest are found by walking
  the date index from the end (for a single word in a fifth of the posts or more,
  checking each of the newest posts against the index). Results are the same; any other query runs as
  Datasette wrote it.
"""

import re
from collections import OrderedDict

from urllib.parse import parse_qsl

from datasette import hookimpl
from markupsafe import Markup, escape

from telegram_datasette.schema import FTS_TABLE, QUEUE_TABLE, STEMS_TABLE
from telegram_datasette.search import fts_query


MMAP_SIZE = 2**31 - 2**16  # SQLite's default ceiling (SQLITE_MAX_MMAP_SIZE); larger is capped
CACHE_KIB = 65536  # 64 MiB of page cache per connection


def _has_stemmed_index(conn) -> bool:
    return bool(conn.execute("select 1 from sqlite_master where name = ?", [STEMS_TABLE]).fetchone())


# trylast: called after Datasette's own prepare_connection, so this escape_fts wins.
@hookimpl(trylast=True)
def prepare_connection(conn):
    conn.create_function("stem_query", 1, fts_query, deterministic=True)
    try:
        stemmed = _has_stemmed_index(conn)
    except Exception:  # the _memory database, or a file that cannot be read yet
        stemmed = False
    if stemmed:
        conn.create_function("escape_fts", 1, fts_query, deterministic=True)
        # The published file is read-only: map it into memory (no read() system
        # call per page) and keep more pages cached per connection. A search for a
        # common word reads a row of posts for each of tens of thousands of matches.
        conn.execute(f"pragma mmap_size = {MMAP_SIZE}")
        conn.execute(f"pragma cache_size = -{CACHE_KIB}")


@hookimpl
def render_cell(value, column, table, database):
    if column != "snippet" or table is not None or not isinstance(value, str):
        return None
    html = str(escape(value))
    html = html.replace("&lt;mark&gt;", "<mark>").replace("&lt;/mark&gt;", "</mark>")
    # Unbalanced marks (a literal "<mark>" in a post) must not leak into the page.
    if html.count("<mark>") != html.count("</mark>"):
        html = str(escape(value))
    return Markup(html.replace("\n", "<br>"))


def _search_fast_path(scope) -> dict:
    if scope.get("type") != "http":
        return scope
    query = scope.get("query_string", b"").decode("latin-1")
    keys = {k for k, _ in parse_qsl(query, keep_blank_values=True)}
    if "_search" not in keys:
        return scope
    extra = []
    if "_nosuggest" not in keys:
        extra.append("_nosuggest=1")
    if scope.get("path", "").endswith(".json") and not keys & {"_facet", "_nofacet"}:
        extra.append("_nofacet=1")
    if not extra:
        return scope
    return {**scope, "query_string": "&".join([query, *extra]).strip("&").encode("latin-1")}


@hookimpl
def asgi_wrapper():
    def wrap(app):
        async def search_app(scope, receive, send):
            await app(_search_fast_path(scope), receive, send)

        return search_app

    return wrap


# --- fast table search on the published file ----------------------------------------

# What Datasette 0.65 writes for `/posts?_search=` without other filters.
_SEARCH_WHERE = f"where rowid in (select rowid from {FTS_TABLE} where {FTS_TABLE} match escape_fts(:search))"
_COUNT_SQL = f"select count(*) from posts {_SEARCH_WHERE} "
_ROWS_SQL = re.compile(
    r"(select (?:(?!\bfrom\b).)+ from posts )(" + re.escape(_SEARCH_WHERE) + r" order by date desc limit \d+)", re.S
)
_FTS_COUNT_SQL = f"select count(*) from {FTS_TABLE} where {FTS_TABLE} match escape_fts(:search)"
# Walk the date index when at least 1 post in DATE_INDEX_SHARE matches: the newest
# page is then found within a few thousand index entries. With fewer matches,
# reading each match is cheaper (and a word matching nothing would walk it all).
DATE_INDEX_SHARE = 500
# A single word in at least 1 post in PROBE_SHARE: rather than collecting every
# match first (40 ms for a third of a million posts), each of the newest posts is
# looked up in the index (a few dozen lookups of well under 0.1 ms). Only for one
# term: for OR, prefix and phrase expressions each lookup costs much more.
PROBE_SHARE = 5
_ONE_TERM = re.compile(r'"[^" ]+"')


class FastSearch:
    """Wraps one immutable database's `execute` to serve the table search's count
    from the full-text index and its newest-first page through the date index."""

    def __init__(self, db, date_index: str | None, rows: int):
        self.db = db
        self.execute = db.execute
        self.date_index = date_index
        self.rows = rows
        self.counts: OrderedDict[str, int] = OrderedDict()

    @classmethod
    async def install(cls, db) -> None:
        if db.is_mutable or db.is_memory:
            return
        present = {r[0] for r in await db.execute(
            "select name from sqlite_master where name in (?, ?)", [STEMS_TABLE, QUEUE_TABLE])}
        if present != {STEMS_TABLE, QUEUE_TABLE}:  # no stemmed index: nothing to speed up
            return
        if (await db.execute(f"select exists(select 1 from [{QUEUE_TABLE}])")).first()[0]:
            return  # posts waiting to be indexed: the index's count could differ
        date_index = None  # the index on date alone (index order varies with how the table was built)
        for index in await db.execute("select name from pragma_index_list('posts')"):
            columns = [r[0] for r in await db.execute("select name from pragma_index_info(?)", [index[0]])]
            if columns == ["date"]:
                date_index = index[0]
                break
        rows = (await db.execute("select coalesce(max(rowid), 0) from posts")).first()[0]
        fast = cls(db, date_index, rows)
        db.execute = fast.run

    async def count(self, search: str) -> int:
        if search not in self.counts:
            self.counts[search] = (await self.execute(_FTS_COUNT_SQL, {"search": search})).first()[0]
            if len(self.counts) > 1024:
                self.counts.popitem(last=False)
        self.counts.move_to_end(search)
        return self.counts[search]

    async def run(self, sql, params=None, *args, **kwargs):
        if isinstance(params, dict) and set(params) == {"search"} and isinstance(params["search"], str):
            if sql == _COUNT_SQL:
                sql = f"select {await self.count(params['search'])}"
            elif self.date_index and (match := _ROWS_SQL.fullmatch(sql)):
                count = await self.count(params["search"])
                if count * PROBE_SHARE >= self.rows and _ONE_TERM.fullmatch(fts_query(params["search"])):
                    # In a fifth of the posts or more: check the newest posts one by one.
                    where = _SEARCH_WHERE[:-1] + f" and {FTS_TABLE}.rowid = posts.rowid)"
                    sql = f"{match.group(1)}indexed by [{self.date_index}] {where}{match.group(2)[len(_SEARCH_WHERE):]}"
                elif count * DATE_INDEX_SHARE >= self.rows:
                    sql = f"{match.group(1)}indexed by [{self.date_index}] {match.group(2)}"
        return await self.execute(sql, params, *args, **kwargs)


@hookimpl
def startup(datasette):
    async def install():
        for db in list(datasette.databases.values()):
            await FastSearch.install(db)

    return install
