"""Multilingual search: the labelled queries everywhere a person searches, the index
kept current, highlights on the original words, languages, query sanitising."""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

from conftest import datasette_served, make_datasette
from telegram_datasette.model import Channel, Media, Page, Post
from telegram_datasette.derive import derive
from telegram_datasette.search import LANGUAGES, fts_query, tokenize
from telegram_datasette.schema import open_db
from telegram_datasette.store import save_page

HERE = Path(__file__).resolve().parent
POSTS = yaml.safe_load((HERE / "fixtures" / "search" / "posts.yml").read_text())
QUERIES = yaml.safe_load((HERE / "search_queries.yml").read_text())
T1, T2 = "2025-01-01T00:00:00.000+00:00", "2025-01-02T00:00:00.000+00:00"


def fixture_post(spec: dict) -> Post:
    channel = spec.get("channel", "searchchan")
    media = []
    if spec.get("poll_question"):
        media.append(Media(0, "poll", poll_question=spec["poll_question"]))
    if spec.get("document_title"):
        media.append(Media(0, "document", title=spec["document_title"]))
    fields = ("text", "date", "link_preview_title", "link_preview_description", "forwarded_from_name", "forwarded_from_channel")
    return Post(
        channel=channel, id=spec["id"], url=f"https://t.me/{channel}/{spec['id']}", html=spec.get("text"),
        media=media, **{f: spec.get(f) for f in fields},
    )


def build(path: Path) -> Path:
    db = open_db(path)
    by_channel: dict[str, list[Post]] = {}
    for spec in POSTS:
        post = fixture_post(spec)
        by_channel.setdefault(post.channel, []).append(post)
    for channel, posts in by_channel.items():
        save_page(db, Page(channel=Channel(channel, title=channel), posts=posts), T1)
    derive(db)
    db.close()
    return path


@pytest.fixture(scope="module")
def search_db(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("search") / "telegram.db")


@pytest.fixture(scope="module")
def search_ds(search_db):
    return make_datasette(search_db)


def get_all(ds, paths: list[str]) -> list:
    async def run():
        out = []
        for path in paths:
            response = await ds.client.get(path)
            out.append((response.status_code, response))
        return out

    # In a thread of its own: Playwright's sync API keeps an event loop in this one.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


def ids_of(rows) -> set[int]:
    return {row["id"] for row in rows}


def check(found: dict[str, set[int]], where: str) -> None:
    problems = []
    for case in QUERIES:
        got = found[case["q"]]
        missing = set(case["find"]) - got
        wrong = set(case.get("not", [])) & got
        if missing or wrong or (not case["find"] and got):
            problems.append(f"{case['q']!r}: missing {sorted(missing)}, wrong {sorted(wrong)}, got {sorted(got)}")
    assert not problems, f"{where}:\n" + "\n".join(problems)


# --- the labelled queries, three ways ------------------------------------------------


def test_labelled_set_is_big_enough():
    assert len(QUERIES) >= 30
    ids = {p["id"] for p in POSTS}
    for case in QUERIES:
        assert set(case["find"]) | set(case.get("not", [])) <= ids, case


def test_labelled_queries_in_table_search(search_ds):
    paths = [f"/telegram/posts.json?_search={quote(c['q'])}&_shape=objects&_size=max&_col=id" for c in QUERIES]
    results = get_all(search_ds, paths)
    found = {}
    for case, (status, response) in zip(QUERIES, results):
        assert status == 200, (case["q"], response.text[:300])
        found[case["q"]] = ids_of(response.json()["rows"])
    check(found, "table search")


def test_table_search_counts_and_sorts_like_datasette(search_db, search_ds):
    """The fast path (count from the index, newest first through the date index)
    gives what Datasette's own SQL gives, with and without other filters."""
    conn = sqlite3.connect(search_db)
    conn.create_function("escape_fts", 1, fts_query)
    where = "rowid in (select rowid from posts_fts where posts_fts match escape_fts(?))"
    cases = [(c["q"], "") for c in QUERIES] + [("Норв*", "en"), ("Норв*", "ru"), ("diplomat", "no")]
    paths = [f"/telegram/posts.json?_search={quote(q)}&_shape=objects&_size=3"
             + (f"&language={language}" if language else "") for q, language in cases]
    for (q, language), (status, response) in zip(cases, get_all(search_ds, paths)):
        assert status == 200, (q, response.text[:300])
        data = response.json()
        sql = f"select count(*) from posts where {where}" + (" and language = ?" if language else "")
        assert data["filtered_table_rows_count"] == conn.execute(sql, [q, *filter(None, [language])]).fetchone()[0], q
        if not language:
            newest = [r[0] for r in conn.execute(f"select date from posts where {where} order by date desc limit 3", [q])]
            assert [row["date"] for row in data["rows"]] == newest, q
    fast = search_ds.get_database("telegram").execute.__self__
    assert type(fast).__name__ == "FastSearch" and fast.date_index == "idx_posts_date"
    assert fast.counts  # the plain searches took the fast path


def test_table_search_for_a_word_in_most_posts(tmp_path):
    db = open_db(tmp_path / "telegram.db")
    posts = [Post(channel="c", id=i, url="u", text=("Visit Oslo" if i % 4 else "Oslo") + f" {i}", html="x",
                  date=f"2024-01-{1 + (i * 7) % 28:02d}T00:00:00+00:00") for i in range(1, 41)]
    save_page(db, Page(channel=None, posts=posts), T1)
    derive(db)
    db.close()
    ds = make_datasette(tmp_path / "telegram.db")
    paths = ["/telegram/posts.json?_search=Oslo&_shape=objects&_size=5", "/telegram/posts.json?_search=visits&_size=5&_shape=objects"]
    (_, everyone), (_, most) = get_all(ds, paths)
    expected = sorted(((p.date, p.id) for p in posts), reverse=True)
    assert everyone.json()["filtered_table_rows_count"] == 40
    assert [r["date"] for r in everyone.json()["rows"]] == [d for d, _ in expected[:5]]
    assert most.json()["filtered_table_rows_count"] == 30
    assert [r["date"] for r in most.json()["rows"]] == [d for d, i in expected if i % 4][:5]


def test_table_search_page_keeps_what_was_typed(search_ds):
    (status, response), = get_all(search_ds, ["/telegram/posts?_search=" + quote('Норвегия "')])
    assert status == 200
    assert 'value="Норвегия &#34;"' in response.text or 'value="Норвегия &quot;"' in response.text
    assert "норвег" not in response.text.split("class=\"tg-cards\"", 1)[0].lower().replace("норвегия", "")


def test_labelled_queries_in_canned_query(search_ds):
    paths = [f"/telegram/search.json?q={quote(c['q'])}&_shape=objects" for c in QUERIES]
    found = {}
    for case, (status, response) in zip(QUERIES, get_all(search_ds, paths)):
        assert status == 200, (case["q"], response.text[:300])
        found[case["q"]] = ids_of(response.json()["rows"])
    check(found, "canned query")


def test_punctuation_never_errors(search_ds):
    nasty = ['"', '""', "'", "(", ")", "*", "-", "NOT", "OR", "AND", "NEAR", "NEAR(", "a OR", "OR a", "NOT a",
             "a AND AND b", "мой-дом", "Oslo.", "e-mail@x.no", "100%", "^a", "a:b", "text:Oslo", "\\", ";--",
             "\u200d", "👍🏻", "   ", "NEAR(a, )", 'NEAR("a" b, x)', "**", '"a" *', "a*b", "+", "{a}", "[x]"]
    paths = []
    for q in nasty:
        paths += [f"/telegram/posts.json?_search={quote(q)}", f"/telegram/search.json?q={quote(q)}",
                  f"/telegram/posts?_search={quote(q)}", f"/telegram/search?q={quote(q)}"]
    for path, (status, response) in zip(paths, get_all(search_ds, paths)):
        assert status == 200, (path, response.text[:300])


@pytest.mark.browser
def test_labelled_queries_on_search_all_page(search_db, tmp_path, chromium):
    with datasette_served(search_db, tmp_path) as base:
        page = chromium.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        found = {}
        for case in QUERIES:
            page.goto(f"{base}/-/search?q={quote(case['q'])}")
            # The page asks each searchable table's JSON; wait until posts answered (a
            # locator, not a JavaScript string: the site's CSP forbids eval).
            page.locator("#search-all-results table").or_(
                page.locator("#search-all-no-results", has_text="posts")).first.wait_for(
                state="attached", timeout=15000)
            found[case["q"]] = {int(x) for x in page.eval_on_selector_all(
                "#search-all-results table tr",
                """rows => {
                    const head = [...rows[0].querySelectorAll('th')].map(th => th.textContent);
                    const i = head.indexOf('id');
                    return rows.slice(1).map(r => r.querySelectorAll('td')[i].textContent);
                }""",
            ) if x.strip()} if page.query_selector("#search-all-results table") else set()
            if case["find"]:
                heading = page.text_content("#search-all-results h2")
                assert heading.startswith(f"{len(case['find'])} result") or len(case["find"]) < len(found[case["q"]]), (case["q"], heading)
        assert not errors, errors
        check(found, "search-all page")
        # What a person sees: the typed words stay in the box.
        page.goto(f"{base}/-/search?q={quote('Норвегия')}")
        assert page.input_value("#search-all-q") == "Норвегия"


# --- the canned query ---------------------------------------------------------------


def canned(ds, **params) -> list[dict]:
    query = "&".join(f"{k}={quote(v)}" for k, v in params.items())
    (status, response), = get_all(ds, [f"/telegram/search.json?{query}&_shape=objects"])
    assert status == 200, response.text[:300]
    return response.json()["rows"]


def test_canned_query_snippets_mark_the_original_words(search_ds):
    rows = canned(search_ds, q="Норвегия")
    snippet = {r["id"]: r["snippet"] for r in rows}[1]
    assert "<mark>Норвегии</mark>" in snippet
    # After emoji with a skin tone and a variation selector, the marks stay on the words.
    rows = canned(search_ds, q="played winner")
    snippet = rows[0]["snippet"]
    assert "<mark>winners</mark>" in snippet and "<mark>played</mark>" in snippet, snippet
    rows = canned(search_ds, q='"дипломатических отношений"')
    assert "<mark>дипломатических отношений</mark>" in rows[0]["snippet"]


def test_canned_query_filters(search_ds):
    assert ids_of(canned(search_ds, q="Норвегия", channel="otherchan")) == {22}
    assert ids_of(canned(search_ds, q="diplomat", language="no")) == {6}
    assert ids_of(canned(search_ds, q="diplomat", language="en")) == {5}
    assert ids_of(canned(search_ds, q="Норв*", **{"from": "2024-07-01", "to": "2024-11-03"})) == {10, 20}
    assert ids_of(canned(search_ds, q="Норв*", forwarded="forwarded")) == {10}
    assert ids_of(canned(search_ds, q="Норв*", forwarded="own")) == {1, 20, 22}


def test_canned_query_is_ranked_and_renders_marks(search_ds):
    rows = canned(search_ds, q="Норвегии OR посольство")
    assert rows[0]["id"] in {1, 22}  # both words beat one
    (status, response), = get_all(search_ds, ["/telegram/search?q=" + quote("Норвегия")])
    assert status == 200
    assert "<mark>Норвегии</mark>" in response.text
    assert "&lt;mark&gt;Норвегии" not in response.text


def test_language_is_stored_and_facetable(search_db, search_ds):
    conn = sqlite3.connect(search_db)
    languages = dict(conn.execute("select id, language from posts"))
    assert {p["id"]: p["lang"] for p in POSTS} == languages
    assert set(languages.values()) <= set(LANGUAGES)
    (status, response), = get_all(search_ds, ["/telegram/posts.json?_facet=language&_search=diplomat"])
    facet = {r["value"]: r["count"] for r in response.json()["facet_results"]["language"]["results"]}
    assert facet == {"en": 1, "no": 1}


# --- keeping the index current ---------------------------------------------------------


def matches(db, q: str) -> set[int]:
    sql = "select posts.id from posts_fts join posts on posts.rowid = posts_fts.rowid where posts_fts match ?"
    return {r[0] for r in db.execute(sql, [fts_query(q)])}


def test_edits_deletions_and_media_changes_reach_the_index(tmp_path):
    db = open_db(tmp_path / "t.db")
    post = Post(channel="c", id=1, url="u", text="Санкции против Норвегии", html="x")
    save_page(db, Page(channel=None, posts=[post]), T1)
    derive(db)
    assert matches(db, "санкция") == {1}
    post.text = "Visit Oslo"
    post.media = [Media(0, "document", title="Отчёт посольства.pdf")]
    save_page(db, Page(channel=None, posts=[post]), T2)
    derive(db)
    assert matches(db, "санкция") == set() and matches(db, "visiting") == {1} and matches(db, "отчеты") == {1}
    assert db.execute("select language from posts").fetchone()[0] == "en"
    assert db.execute("pragma integrity_check").fetchone()[0] == "ok"
    db.execute("insert into posts_fts(posts_fts) values ('integrity-check')")
    db.execute("delete from posts")
    derive(db)
    assert matches(db, "visiting") == set()
    assert db.execute("select count(*) from posts_fts_stems").fetchone()[0] == 0
    assert derive(db) == 0  # nothing queued: nothing done


def test_unchanged_posts_are_not_reindexed(tmp_path):
    db = open_db(tmp_path / "t.db")
    post = Post(channel="c", id=1, url="u", text="Hello Oslo", html="x", views=1)
    save_page(db, Page(channel=None, posts=[post]), T1)
    assert derive(db) == 1
    post.views = 2
    save_page(db, Page(channel=None, posts=[post]), T2)
    assert derive(db) == 0


def test_old_unstemmed_index_is_replaced(tmp_path):
    path = tmp_path / "t.db"
    conn = sqlite3.connect(path)
    conn.execute("create table posts (channel text, id integer, text text, primary key (channel, id))")
    conn.execute("insert into posts values ('c', 1, 'Послы Норвегии')")
    conn.commit()
    conn.close()
    import sqlite_utils

    old = sqlite_utils.Database(path)
    old["posts"].enable_fts(["text"], create_triggers=True)
    old.close()
    db = open_db(path)
    derive(db)
    assert matches(db, "Норвегия") == {1}
    assert "posts_ai" not in {r[0] for r in db.execute("select name from sqlite_master where type = 'trigger'")}


def test_a_large_indexing_run_optimizes_the_index(tmp_path, monkeypatch):
    import telegram_datasette.search

    calls = []
    real = telegram_datasette.search.optimize_index
    monkeypatch.setattr(telegram_datasette.search, "optimize_index", lambda db: (calls.append(1), real(db)))
    db = open_db(tmp_path / "t.db")
    posts = [Post(channel="c", id=i, url="u", text=f"Послы Норвегии {i}", html="x") for i in range(1, 4)]
    save_page(db, Page(channel=None, posts=posts), T1)
    assert derive(db, batch_size=2, optimize_after=3) == 3
    assert calls == [1]  # a big run: merged into one segment
    db.execute("insert into posts_fts(posts_fts) values ('integrity-check')")
    assert matches(db, "Норвегия") == {1, 2, 3}
    posts[0].text = "Visit Oslo"
    save_page(db, Page(channel=None, posts=posts[:1]), T2)
    assert derive(db, optimize_after=3) == 1
    assert calls == [1]  # a small run: left to FTS5's automatic merging
    assert matches(db, "Норвегия") == {2, 3} and matches(db, "visits") == {1}


def test_published_file_is_memory_mapped(search_ds):
    async def pragmas():
        db = search_ds.get_database("telegram")
        return [(await db.execute(f"pragma {name}")).first()[0] for name in ("mmap_size", "cache_size")]

    with ThreadPoolExecutor(1) as pool:
        mmap_size, cache_size = pool.submit(asyncio.run, pragmas()).result()
    assert mmap_size > 100_000_000 and cache_size <= -65536


def test_published_file_needs_no_python_functions(search_db, tmp_path):
    """Plain sqlite3, without the plugin, can read, search and write the published file."""
    copy = tmp_path / "copy.db"
    copy.write_bytes(search_db.read_bytes())
    conn = sqlite3.connect(copy)
    assert conn.execute("select count(*) from posts_fts where posts_fts match 'норвег'").fetchone()[0] == 2
    conn.execute("update posts set text = 'x' where id = 1")
    conn.execute("delete from posts where id = 2")
    conn.commit()


# --- tokens and queries ------------------------------------------------------------


def test_tokens_line_up_with_sqlite_unicode61():
    conn = sqlite3.connect(":memory:")
    conn.execute("create virtual table t using fts5(x, tokenize='unicode61 remove_diacritics 2')")
    conn.execute("create virtual table v using fts5vocab(t, instance)")
    texts = [p["text"] or "" for p in POSTS] + ["👍🏻 a❤️b ⏵x 🏳️‍🌈 ё é e\u0301 İstanbul ﬁx 1,5 co-op don't", "\u200dz\u00adq"]
    for i, text in enumerate(texts):
        conn.execute("insert into t(rowid, x) values (?, ?)", [i, text])
    for i, text in enumerate(texts):
        count = conn.execute("select count(*) from v where doc = ?", [i]).fetchone()[0]
        assert len(tokenize(text)) == count, text


@pytest.mark.parametrize("query, expected", [
    ("Норвегия", '"норвег"'),
    ("ёлки", '"елк"'),
    ("Oslo.", '"oslo"'),
    ("мой-дом", '"мо дом"'),
    ('"', '""'),
    ("", '""'),
    ("NOT", '""'),
    ("a NOT", '"a"'),
    ("NOT a", '"a"'),
    ("Норвеги*", '"норвег"*'),
    ("NEAR(a b, 3)", 'NEAR("a" "b", 3)'),
    ("a NEAR/2 b", 'NEAR("a" "b", 2)'),
    ("a OR b c", '"a" OR "b" AND "c"'),
])
def test_fts_query(query, expected):
    assert fts_query(query) == expected
