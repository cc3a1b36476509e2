"""Multilingual search: a stemmed full-text index and the language of each post.

SQLite's FTS5 only matches exact tokens, and its tokenizers cannot be written in
Python, so the index holds *stems*: every token of a post is lowercased, `ё` is
folded to `е`, and it is stemmed (Cyrillic tokens with the Russian stemmer, Latin
tokens with the Norwegian stemmer in Norwegian posts and the English one
elsewhere). Queries go through the same steps (`fts_query`), and Latin query
words are looked up under both their English and Norwegian stems, so a query
finds a post whatever language the post was detected as.

`posts_fts` is an FTS5 table with external content `posts` (so Datasette and
datasette-search-all detect it as the index of `posts`), and its stems are in
the same order as the tokens SQLite's `unicode61` tokenizer sees in the
original columns: FTS5's own `snippet()` and `highlight()` therefore read and
mark the ORIGINAL text. The `text` column's index also holds, after the text's
own stems, the stems of the post's poll question and document titles.

Keeping it current without the store knowing: the index, its triggers and its
queue are created in scripts/schema.py; the derive step (scripts/derive.py) hands
each batch of queued posts to `index_batch`, which detects their language, writes
`posts.language` ('ru', 'en', 'no' or 'other') and replaces their index rows. The
stems written for each post are kept, compressed, in `posts_fts_stems`, because an
external-content FTS5 row can only be removed by repeating what was indexed.
"""

from __future__ import annotations

import functools
import hashlib
import re
import sqlite3
import threading
import unicodedata
import zlib

import Stemmer

from .schema import FTS_COLUMNS, FTS_TABLE, QUEUE_TABLE, STEMS_TABLE, TOKENIZE

LANGUAGES = ("ru", "en", "no", "other")
# A query that matches nothing (an empty MATCH is an error in FTS5).
MATCH_NOTHING = '""'
# Part of each post's digest: bump it (with a migration that queues every post) when
# the way stems are made changes, and every post is re-indexed.
INDEX_VERSION = "1"


# --- tokens ------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _token_rules() -> tuple[dict, re.Pattern]:
    """Regexes for tokens exactly as SQLite's unicode61 tokenizer makes them.

    unicode61 treats letters, digits, marks, private-use and code points unknown to
    its (older) Unicode tables as token characters. Python's tables are newer, so
    the separators Python would guess are checked against SQLite itself (some
    emoji and skin-tone modifiers are token characters to SQLite); and a token
    made only of characters that remove_diacritics deletes (a lone U+FE0F after an
    emoji) is no token at all. Getting this exactly right keeps highlights on the
    right words. Returns (a str.translate table turning separators into spaces and
    ё into е, a regex for tokens that vanish).
    """
    ranges = [(0x21, 0x20000), (0xE0000, 0xE1000)]  # the rest is letters or unassigned
    guessed, marks = [], []
    for lo, hi in ranges:
        for cp in range(lo, hi):
            category = unicodedata.category(chr(cp))
            if category[0] in "PSZ" or category in ("Cc", "Cf"):
                guessed.append(cp)
            elif category[0] == "M":
                marks.append(cp)
    conn = sqlite3.connect(":memory:")
    conn.execute(f"create virtual table t using fts5(x, tokenize='{TOKENIZE}')")
    conn.execute("create virtual table v using fts5vocab(t, instance)")
    conn.execute("insert into t(rowid, x) values (0, ?)", [" ".join(f"x{chr(cp)}x" for cp in guessed)])
    terms = iter(row[0] for row in conn.execute("select term from v where doc = 0 order by offset"))
    separators = [chr(c) for c in range(0, 0x21)]
    tokens_alone = []
    for cp in guessed:
        if next(terms) == "x":  # "x?x" was split in two: a separator
            next(terms)
            separators.append(chr(cp))
        else:
            tokens_alone.append(cp)
    candidates = marks + tokens_alone
    conn.executemany("insert into t(rowid, x) values (?, ?)", [(cp, chr(cp)) for cp in candidates])
    kept = {row[0] for row in conn.execute("select distinct doc from v where doc != 0")}
    vanishing = [chr(cp) for cp in candidates if cp not in kept]
    conn.close()
    # A run of token characters with at least one that does not vanish.
    table = {ord(c): " " for c in separators}
    table[ord("ё")] = "е"
    return table, re.compile("[" + _char_class(vanishing) + "]+")


def _char_class(chars: list[str]) -> str:
    """Characters as regex ranges (thousands of single characters make a slow class)."""
    points = sorted({ord(c) for c in chars})
    parts, i = [], 0
    while i < len(points):
        j = i
        while j + 1 < len(points) and points[j + 1] == points[j] + 1:
            j += 1
        lo, hi = re.escape(chr(points[i])), re.escape(chr(points[j]))
        parts.append(lo if i == j else f"{lo}-{hi}")
        i = j + 1
    return "".join(parts)


def tokenize(text: str | None) -> list[str]:
    """The tokens of text, in unicode61's order, lowercased and with ё folded to е."""
    if not text:
        return []
    table, vanish = _token_rules()
    tokens = text.lower().translate(table).split()
    if any(len(t) < 3 and vanish.fullmatch(t) for t in tokens):
        tokens = [t for t in tokens if not vanish.fullmatch(t)]
    return tokens


_STEMMERS = threading.local()


def _stemmer(language: str) -> Stemmer.Stemmer:
    # Stemmer objects are not thread-safe; Datasette calls SQL functions from threads.
    cache = _STEMMERS.__dict__
    if language not in cache:
        cache[language] = Stemmer.Stemmer({"ru": "russian", "en": "english", "no": "norwegian"}[language])
    return cache[language]


_CYRILLIC = re.compile("[\u0400-\u052f]")
_LATIN = re.compile("[a-z\u00c0-\u024f]")


def script_of(token: str) -> str:
    if _CYRILLIC.search(token):
        return "cyrillic"
    if _LATIN.search(token):
        return "latin"
    return "other"


def stem(token: str, latin: str = "en") -> str:
    """The stem of one (already lowercased) token; latin is 'en' or 'no'."""
    kind = script_of(token)
    if kind == "cyrillic":
        return _stemmer("ru").stemWord(token)
    if kind == "latin":
        return _stemmer(latin).stemWord(token)
    return token


def stem_text(text: str | None, latin: str = "en") -> list[str]:
    return [stem(token, latin) for token in tokenize(text)]


# --- language ------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _detector():
    from lingua import Language, LanguageDetectorBuilder

    languages = [Language.RUSSIAN, Language.ENGLISH, Language.BOKMAL, Language.NYNORSK]
    return LanguageDetectorBuilder.from_languages(*languages).build()


_LINGUA_CODES = {"RUSSIAN": "ru", "ENGLISH": "en", "BOKMAL": "no", "NYNORSK": "no"}
_WORD = re.compile(r"[^\W\d_]{2,}")


DETECT_CHARS = 200  # the start of a post says its language; longer texts only cost time


def _rule(text: str | None) -> str | None:
    """The language when the script alone says it, else None (ask the model)."""
    words = _WORD.findall(text or "")
    cyrillic = sum(1 for w in words if _CYRILLIC.search(w.lower()))
    latin = sum(1 for w in words if _LATIN.search(w.lower()))
    if cyrillic + latin < 2:
        return "other"
    if cyrillic >= latin:
        return "ru"
    return None


def detect_languages(texts: list[str | None]) -> list[str]:
    """'ru', 'en', 'no' or 'other' for each text (the language most of it is in).

    Texts with fewer than two words in Cyrillic or Latin script are 'other'; texts
    mostly in Cyrillic are Russian without asking the model (the channel's
    Cyrillic is Russian); the rest go to lingua, restricted to English and
    Norwegian (Bokmål, Nynorsk) and Russian, in parallel. bench/language.py
    measured this at 97% on the labelled short posts.
    """
    found = [_rule(text) for text in texts]
    ask = [i for i, language in enumerate(found) if language is None]
    if ask:
        answers = _detector().detect_languages_in_parallel_of([texts[i][:DETECT_CHARS] for i in ask])
        for i, language in zip(ask, answers):
            found[i] = _LINGUA_CODES.get(language.name, "other") if language else "other"
    return found


def detect_language(text: str | None) -> str:
    return detect_languages([text])[0]


# --- queries ---------------------------------------------------------------------

_QUERY_PART = re.compile(r'"[^"]*"?|\(|\)|,|[^\s"(),]+')
_OPERATORS = {"OR", "AND", "NOT"}
_NEAR = re.compile(r"^NEAR(?:/(\d+))?$")


def _phrase(tokens: list[str], prefix: bool, latin: str) -> str | None:
    if not tokens:
        return None
    stems = [stem(t, latin) for t in tokens]
    if prefix:
        last = tokens[-1]
        stems[-1] = _common_prefix(last, stems[-1]) or last
    return '"' + " ".join(stems) + '"' + ("*" if prefix else "")


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def _variants(make) -> str | None:
    """One FTS5 expression for a unit, under both Latin stemmers when they differ."""
    found = [v for v in dict.fromkeys(make(latin) for latin in ("en", "no")) if v]
    if not found:
        return None
    return found[0] if len(found) == 1 else "(" + " OR ".join(found) + ")"


def _units(query: str) -> list:
    """Parse a person's query into phrases, NEAR groups and operators."""
    parts = _QUERY_PART.findall(query)
    items: list = []
    i = 0
    while i < len(parts):
        part = parts[i]
        near = _NEAR.match(part)
        if part.startswith('"'):
            inner = part[1:-1] if part.endswith('"') and len(part) > 1 else part[1:]
            prefix = i + 1 < len(parts) and parts[i + 1] == "*"
            items.append(("phrase", tokenize(inner), prefix))
            i += 2 if prefix else 1
            continue
        if near and i + 1 < len(parts) and parts[i + 1] == "(":
            # NEAR(a b "c d", 5)
            j, group, distance = i + 2, [], None
            while j < len(parts) and parts[j] != ")":
                if parts[j] == "," and j + 1 < len(parts) and parts[j + 1].isdigit():
                    distance, j = int(parts[j + 1]), j + 2
                    continue
                group.extend(_word_phrases(parts[j]))
                j += 1
            items.append(("near", group, distance))
            i = j + 1
            continue
        if near:
            items.append(("op", "NEAR", int(near.group(1)) if near.group(1) else None))
        elif part in _OPERATORS:
            items.append(("op", part, None))
        else:
            items.extend(("phrase", tokens, prefix) for tokens, prefix in _word_phrases(part))
        i += 1
    return items


def _word_phrases(part: str) -> list[tuple[list[str], bool]]:
    if part.startswith('"'):
        inner = part.strip('"').rstrip("*")
        return [(tokenize(inner), part.endswith("*"))] if tokenize(inner) else []
    prefix = part.endswith("*")
    tokens = tokenize(part)
    return [(tokens, prefix)] if tokens else []


@functools.lru_cache(maxsize=4096)
def fts_query(query: str | None) -> str:
    """An FTS5 MATCH expression over the stemmed index for what a person typed.

    Words are ANDed; "quoted phrases", prefix*, OR, AND, NOT, `a NEAR b`,
    `a NEAR/5 b` and NEAR(a b, 5) work; any other punctuation splits words (as the
    tokenizer does) and never makes an invalid expression. A query with no
    searchable word matches nothing.
    """
    items = _units(query or "")
    # Fold infix NEAR into NEAR groups.
    folded: list = []
    i = 0
    while i < len(items):
        item = items[i]
        if item[0] == "op" and item[1] == "NEAR":
            if folded and folded[-1][0] in ("phrase", "near") and i + 1 < len(items) and items[i + 1][0] == "phrase":
                left = folded.pop()
                group = left[1] if left[0] == "near" else [(left[1], left[2])]
                folded.append(("near", group + [(items[i + 1][1], items[i + 1][2])], item[2] or (left[2] if left[0] == "near" else None)))
                i += 2
                continue
            i += 1
            continue
        folded.append(item)
        i += 1
    expressions: list[str] = []
    pending_op = None
    for item in folded:
        if item[0] == "op":
            if expressions and pending_op is None:
                pending_op = item[1]
            continue
        expression = _expression(item)
        if expression is None:
            continue
        if expressions:
            expressions.append(pending_op or "AND")
        expressions.append(expression)
        pending_op = None
    return " ".join(expressions) if expressions else MATCH_NOTHING


def _expression(item) -> str | None:
    kind = item[0]
    if kind == "phrase":
        tokens, prefix = item[1], item[2]
        return _variants(lambda latin: _phrase(tokens, prefix, latin))
    group = [(tokens, prefix) for tokens, prefix in item[1] if tokens]
    if not group:
        return None
    if len(group) == 1:
        return _expression(("phrase", *group[0]))

    def near(latin):
        phrases = " ".join(_phrase(tokens, prefix, latin) for tokens, prefix in group)
        return f"NEAR({phrases}, {item[2]})" if item[2] is not None else f"NEAR({phrases})"

    return _variants(near)


# --- the index -----------------------------------------------------------------


def language_source(post: dict, extra: list[str]) -> str:
    """The text a post's language is detected from: its text, or else what it shows."""
    return post.get("text") or " ".join(
        filter(None, [post.get("link_preview_title"), post.get("link_preview_description"), *extra])
    )


def post_document(post: dict, extra: list[str], language: str) -> list[str]:
    """The stemmed column values for a post row and its poll/document texts."""
    latin = "no" if language == "no" else "en"
    values = []
    for column in FTS_COLUMNS:
        stems = stem_text(post.get(column), latin)
        if column == "text":
            for more in extra:
                stems += stem_text(more, latin)
        values.append(" ".join(stems))
    return values


# After indexing at least this many posts in one go (a first build, an import, a
# re-index), the index is merged into one b-tree (FTS5 'optimize'): a word is then
# one doclist instead of one per segment, which makes searches for common words
# faster. Small incremental runs leave it to FTS5's automatic merging.
OPTIMIZE_AFTER = 20_000


def optimize_index(db) -> None:
    """Merge the full-text index into a single segment (FTS5 'optimize')."""
    with db.atomic():
        db.conn.execute(f"insert into [{FTS_TABLE}]([{FTS_TABLE}]) values ('optimize')")


def index_batch(conn, rowids: list[int]) -> None:
    """Language and index rows of these posts (rowids of `posts`; gone ones are removed)."""
    marks = ",".join("?" * len(rowids))
    columns = ", ".join(f"[{c}]" for c in FTS_COLUMNS)
    posts = {
        row[0]: dict(zip(["rowid", "channel", "id", "language", *FTS_COLUMNS], row))
        for row in conn.execute(f"select rowid, channel, id, language, {columns} from posts where rowid in ({marks})", rowids)
    }
    extras: dict[int, list[str]] = {}
    for rowid, question, title in conn.execute(
        "select posts.rowid, media.poll_question, media.title from media join posts "
        "on posts.channel = media.channel and posts.id = media.post_id "
        f"where posts.rowid in ({marks}) and (media.poll_question is not null or media.kind in ('document', 'audio')) "
        "order by media.position",
        rowids,
    ):
        extras.setdefault(rowid, []).extend(t for t in (question, title) if t)
    old = {
        row[0]: row[1:]
        for row in conn.execute(f"select rowid, digest, stems, channel, post_id from [{STEMS_TABLE}] where rowid in ({marks})", rowids)
    }
    placeholders = ", ".join("?" * len(FTS_COLUMNS))
    digests, changed = {}, []
    for rowid in rowids:
        post = posts.get(rowid)
        if post is not None:
            digests[rowid] = _digest(post, extras.get(rowid, []))
            if rowid in old and old[rowid][0] == digests[rowid] and old[rowid][2:] == (post["channel"], post["id"]):
                continue
        changed.append(rowid)
    to_detect = [r for r in changed if r in posts]
    languages = dict(zip(to_detect, detect_languages([language_source(posts[r], extras.get(r, [])) for r in to_detect])))
    for rowid in changed:
        post = posts.get(rowid)
        if rowid in old:
            previous = _unpack(old[rowid][1])
            conn.execute(
                f"insert into [{FTS_TABLE}] ([{FTS_TABLE}], rowid, {columns}) values ('delete', ?, {placeholders})",
                [rowid, *previous],
            )
            conn.execute(f"delete from [{STEMS_TABLE}] where rowid = ?", [rowid])
        if post is None:
            continue
        language = languages[rowid]
        values = post_document(post, extras.get(rowid, []), language)
        conn.execute(f"insert into [{FTS_TABLE}] (rowid, {columns}) values (?, {placeholders})", [rowid, *values])
        conn.execute(
            f"insert into [{STEMS_TABLE}] (rowid, channel, post_id, language, digest, stems) values (?, ?, ?, ?, ?, ?)",
            [rowid, post["channel"], post["id"], language, digests[rowid], _pack(values)],
        )
        if post["language"] != language:
            conn.execute("update posts set language = ? where rowid = ?", [language, rowid])


def requeue_moved_rows(conn) -> None:
    """Queue posts whose rowid no longer matches what was indexed (after a VACUUM
    that renumbered rows), and posts that are not indexed at all."""
    conn.execute(
        f"insert or ignore into [{QUEUE_TABLE}] (rowid) "
        f"select s.rowid from [{STEMS_TABLE}] s left join posts p on p.rowid = s.rowid "
        "where p.channel is not s.channel or p.id is not s.post_id"
    )
    conn.execute(
        f"insert or ignore into [{QUEUE_TABLE}] (rowid) "
        f"select p.rowid from posts p left join [{STEMS_TABLE}] s on s.rowid = p.rowid where s.rowid is null"
    )


def _digest(post: dict, extra: list[str]) -> str:
    parts = [INDEX_VERSION, *(post.get(c) or "" for c in FTS_COLUMNS), *extra]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def _pack(values: list[str]) -> bytes:
    return zlib.compress("\x1f".join(values).encode("utf-8"))


def _unpack(blob: bytes) -> list[str]:
    return zlib.decompress(blob).decode("utf-8").split("\x1f")
