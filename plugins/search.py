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
"""

import sys
from pathlib import Path

from urllib.parse import parse_qsl

from datasette import hookimpl
from markupsafe import Markup, escape

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `datasette serve --plugins-dir plugins` from anywhere
    sys.path.insert(0, str(ROOT))

from scripts.search import STEMS_TABLE, fts_query  # noqa: E402


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
