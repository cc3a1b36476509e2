"""datasette-search-all's "Search all tables" menu link, without seven queries on every page.

datasette-search-all decides on every HTML page whether to show its menu link by listing
every database's tables, hidden tables and full-text tables and checking permissions
(about seven queries to sqlite_master, each a hop to Datasette's SQL threads: about 3 ms
of an 8 ms post page). When every database file is served immutable (as `make serve` and
the published site do) the answer cannot change for a given actor, so this wrapper around
the menu_links hook remembers it per actor. With a mutable database file it changes
nothing.
"""

from __future__ import annotations

import json

from datasette import hookimpl

_ANSWERS: dict = {}
_ANSWERS_LIMIT = 1000


def _is_search_all_link(result) -> bool:
    return (
        callable(result)
        and getattr(result, "__module__", "") == "datasette_search_all"
        and getattr(result, "__qualname__", "") == "menu_links.<locals>.inner"
    )


def _files_immutable(datasette) -> bool:
    return all(not db.is_mutable for db in datasette.databases.values() if not db.is_memory)


def _remembered(original, datasette, actor):
    try:
        key = (id(datasette), json.dumps(actor, sort_keys=True, default=repr))
    except (TypeError, ValueError):
        return original

    async def inner():
        if key in _ANSWERS:
            answer = _ANSWERS[key]
        else:
            answer = await original()
            if len(_ANSWERS) >= _ANSWERS_LIMIT:
                _ANSWERS.clear()
            _ANSWERS[key] = answer
        return [dict(link) for link in answer] if answer else answer

    return inner


@hookimpl(wrapper=True)
def menu_links(datasette, actor, request):
    results = yield
    if request is None or not _files_immutable(datasette):
        return results
    return [_remembered(r, datasette, actor) if _is_search_all_link(r) else r for r in results]
