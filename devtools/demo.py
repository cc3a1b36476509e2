"""Generated demo channels for the fake Telegram server and for benchmarks.

All content is the project's own: short sentences about an embassy's life in Russian,
English and Norwegian, combined from fragments so that large channels do not repeat
themselves much. Output is deterministic for a given seed.

The records are the parser's model objects (Channel, Post, Media...), filled the way a
correct parser would fill them from the rendered page; that is what round-trip tests
compare against.
"""

from __future__ import annotations

import gc
import random
from bisect import bisect
from itertools import accumulate
from datetime import datetime, timedelta, timezone

from telegram_datasette.model import Channel, Count, Link, Media, PollOption, Post, Reaction
from devtools.render import duration_text, format_count, text_to_html

CDN = "https://cdn-fake.telesco.pe/file"

PLACES = {  # name: (latitude, longitude)
    "Oslo": (59.9139, 10.7522), "Tromsø": (69.6492, 18.9553), "Kirkenes": (69.7271, 30.0450),
    "Moscow": (55.7558, 37.6173), "Bergen": (60.3913, 5.3221), "Murmansk": (68.9585, 33.0827),
    "Barentsburg": (78.0648, 14.2335), "Saint Petersburg": (59.9343, 30.3351),
    "Arkhangelsk": (64.5393, 40.5187), "Stavanger": (58.9700, 5.7331),
}
CITIES = {
    "ru": ["Осло", "Тромсё", "Киркенесе", "Москве", "Бергене", "Мурманске", "Баренцбурге", "Архангельске"],
    "en": ["Oslo", "Tromsø", "Kirkenes", "Moscow", "Bergen", "Murmansk", "Barentsburg", "Arkhangelsk"],
    "no": ["Oslo", "Tromsø", "Kirkenes", "Moskva", "Bergen", "Murmansk", "Barentsburg", "Arkhangelsk"],
}
DAYS = {
    "ru": ["в понедельник", "во вторник", "в среду", "в четверг", "в пятницу", "в субботу", "сегодня", "вчера"],
    "en": ["on Monday", "on Tuesday", "on Wednesday", "on Thursday", "on Friday", "on Saturday", "today", "yesterday"],
    "no": ["på mandag", "på tirsdag", "på onsdag", "på torsdag", "på fredag", "på lørdag", "i dag", "i går"],
}
SENTENCES = {
    "ru": [
        "Посол встретился с представителями деловых кругов в {city} {day}.",
        "Консульский отдел {day} работает по сокращённому графику.",
        "В {city} прошёл концерт студентов консерватории, зал был полон!",
        "Делегация рыбопромышленников обсудила квоты на треску на {n}-й сессии комиссии.",
        "Синоптики обещают в {city} до {t} градусов мороза, будьте осторожны на дорогах.",
        "Сборная по лыжным гонкам провела {n} тренировок на трассах под {city}.",
        "Открыта выставка фотографий о жизни Заполярья, вход свободный.",
        "Товарооборот между странами за квартал вырос на {n} процентов.",
        "Напоминаем о порядке оформления виз: запись открывается {day}.",
        "Сотрудники посольства возложили цветы к памятнику освободителям в {city}.",
        "Прошёл вечер русской поэзии, стихи читали школьники из {city}.",
        "В Баренцевом море продолжается сезон лова, улов превысил {n} тонн.",
    ],
    "en": [
        "The Ambassador met business leaders in {city} {day}.",
        "The consular section works shorter hours {day}.",
        "A student orchestra played to a full hall in {city}!",
        "Fisheries experts discussed cod quotas at the {n}th session of the joint commission.",
        "Forecasters expect {t} degrees below zero in {city}; take care on the roads.",
        "The cross-country ski team held {n} training sessions near {city}.",
        "A photo exhibition about life in the Arctic is open, entry is free.",
        "Trade between the two countries grew by {n} percent this quarter.",
        "Visa appointments for next month open {day}.",
        "Embassy staff laid flowers at the liberators' memorial in {city}.",
        "An evening of poetry took place, with readings by pupils from {city}.",
        "The fishing season in the Barents Sea goes on; the catch passed {n} tonnes.",
    ],
    "no": [
        "Ambassadøren møtte næringslivsledere i {city} {day}.",
        "Konsulatavdelingen har kortere åpningstid {day}.",
        "Et studentorkester spilte for fullt hus i {city}!",
        "Fiskeriforskere drøftet torskekvoter på den {n}. sesjonen i kommisjonen.",
        "Meteorologene venter {t} minusgrader i {city}, kjør forsiktig.",
        "Skilandslaget hadde {n} treningsøkter nær {city}.",
        "En fotoutstilling om livet i Arktis er åpen, gratis inngang.",
        "Handelen mellom landene økte med {n} prosent i kvartalet.",
        "Timebestilling for visum åpner {day}.",
    ],
}
HASHTAGS = {
    "ru": ["#Норвегия", "#Россия", "#консульство", "#культура", "#Арктика", "#спорт", "#погода", "#торговля"],
    "en": ["#Norway", "#Russia", "#consular", "#culture", "#Arctic", "#sport", "#weather", "#trade"],
    "no": ["#Norge", "#Russland", "#kultur", "#Arktis", "#sport", "#været", "#handel"],
}
EMOJI = ["🇳🇴", "🇷🇺", "📌", "✨", "📍", "🗓", "📷", "🎵", "❄️", "⚽", "🎻", "📖", "🤝", "🚢", "🐟", "🏔"]
REACTION_EMOJI = ["👍", "❤", "🔥", "👏", "😁", "🤔", "🙏", "😢", "🎉"]
MENTIONS = ["@demo_mfa", "@demo_culture_no", "@arctic_news_demo", "@trade_desk_demo"]
SITES = [
    ("https://example.org/news/{n}", "Example News", "Arctic cooperation: what changed in {year}",
     "A short overview of fisheries, research and trade in the north."),
    ("https://demo-mfa.example/ru/press/{n}", "Demo MFA", "Брифинг официального представителя №{n}",
     "Основные темы недели: Арктика, культура, консульские вопросы."),
    ("https://norsk-nyheter.example/artikkel/{n}", "Norske nyheter", "Nordområdene i {year}",
     "Fiske, forskning og samarbeid i nord."),
]
FORWARD_SOURCES = [  # (title, username or None for a hidden account)
    ("Demo MFA", "demo_mfa"), ("Arctic Culture Demo", "demo_culture_no"),
    ("Trade Desk Demo", "trade_desk_demo"), ("A. Reader", None),
]
AUTHORS = ["Press Office", "Консульский отдел", "Kulturavdelingen", "Duty Officer"]
SERVICE_TEXTS = ["Channel photo updated", "Live stream started", "Live stream finished (1 hour)",
                 "Channel name was changed to «{title}»"]
POLL_QUESTIONS = [
    ("Какой город вы хотели бы посетить?", ["Осло", "Тромсё", "Киркенес", "Берген"]),
    ("Which event should we host next?", ["Concert", "Film evening", "Chess tournament"]),
    ("Hvilken sport følger du mest?", ["Ski", "Fotball", "Hockey"]),
]
CONTACTS = [("Consular Duty Line", "+47 00 00 00 01"), ("Kulturhuset Demo", "+47 00 00 00 02")]
AUDIO = [("Winter Nocturne", "Demo Chamber Ensemble"), ("Северная песня", "Хор студентов"),
         ("Nordlys", "Demo Trio")]
DOCUMENTS = [("visa_application_form.pdf", "248.5 KB"), ("press_release.docx", "31.2 KB"),
             ("annual_report.pdf", "2.1 MB"), ("programme_concert.pdf", "1.4 MB")]
STICKERS = ["👍", "🎉", "😁", "❤"]

# kind: weight
KIND_WEIGHTS = {
    "text": 28, "photo": 20, "album": 7, "video": 9, "gif": 2, "round_video": 2, "voice": 2,
    "audio": 2, "document": 3, "sticker": 2, "poll": 2, "location": 2, "contact": 1, "service": 2,
}
_KINDS = list(KIND_WEIGHTS)
_CUMULATIVE = list(accumulate(KIND_WEIGHTS.values()))


def count(value: int) -> Count:
    text = format_count(value)
    return Count(text=text, value=value, precision=count_precision(text))


def count_precision(text: str) -> int:
    """Half of the last shown digit's unit: "1.51M" -> 5000, "630" -> 0."""
    units = {"K": 1_000, "M": 1_000_000, "B": 1_000_000_000}
    if not text or text[-1] not in units:
        return 0
    decimals = len(text[:-1].partition(".")[2])
    return units[text[-1]] // (10 ** decimals) // 2


def pick(rng: random.Random, seq):
    # rng.choice and rng.randint are several times slower; this keeps 100k posts fast.
    return seq[int(rng.random() * len(seq))]


def between(rng: random.Random, low: int, high: int) -> int:
    return low + int(rng.random() * (high - low + 1))


def several(rng: random.Random, seq, k: int) -> list:
    """k distinct items (a cheaper stand-in for rng.sample)."""
    start = int(rng.random() * len(seq))
    return [seq[(start + j) % len(seq)] for j in range(min(k, len(seq)))]


def media_url(rng: random.Random, ext: str) -> str:
    # Real CDN links carry long expiring tokens; these look alike and point nowhere.
    return f"{CDN}/{rng.getrandbits(96):024x}.{ext}?token={rng.getrandbits(64):016x}"


def sentence(rng: random.Random, lang: str) -> str:
    return pick(rng, SENTENCES[lang]).format(
        city=pick(rng, CITIES[lang]), day=pick(rng, DAYS[lang]),
        n=between(rng, 2, 95), t=between(rng, 5, 35))


def make_text(rng: random.Random, lang: str, *, link: str | None = None) -> tuple[str, list[str], list[str]]:
    """Returns (text, hashtags, mentions)."""
    lines = [" ".join(sentence(rng, lang) for _ in range(between(rng, 1, 3)))]
    if rng.random() < 0.4:
        lines[0] = pick(rng, EMOJI) + " " + lines[0]
    if rng.random() < 0.3:
        lines.append(sentence(rng, lang))
    mentions = []
    if rng.random() < 0.12:
        mentions = [pick(rng, MENTIONS)]
        lines.append({"ru": "Подробнее: ", "en": "More: ", "no": "Mer: "}[lang] + mentions[0])
    if link:
        lines.append(link)
    hashtags = []
    if rng.random() < 0.45:
        hashtags = several(rng, HASHTAGS[lang], between(rng, 1, 3))
        lines.append(" ".join(hashtags))
    # The parser's convention: hashtags and mentions without their # and @.
    return "\n\n".join(lines), [h[1:] for h in hashtags], [m[1:] for m in mentions]


def make_media(rng: random.Random, kind: str, position: int = 0, message_id: int | None = None,
               lang: str = "en") -> Media:
    m = Media(position=position, kind=kind, message_id=message_id)
    if kind == "photo":
        m.url, m.width, m.height = media_url(rng, "jpg"), 800, pick(rng, [450, 600, 800, 1000])
    elif kind in ("video", "gif", "round_video"):
        m.thumbnail_url = media_url(rng, "jpg")
        m.too_big = kind == "video" and rng.random() < 0.3
        m.url = None if m.too_big else media_url(rng, "mp4")
        if kind != "gif":
            m.duration_seconds = between(rng, 3, 60 if kind == "round_video" else 900)
    elif kind == "voice":
        m.url, m.duration_seconds = media_url(rng, "ogg"), between(rng, 2, 300)
    elif kind == "audio":
        m.title, m.performer = pick(rng, AUDIO)
    elif kind == "document":
        m.title, m.size_text = pick(rng, DOCUMENTS)
    elif kind == "sticker":
        m.url = media_url(rng, "webp")
    elif kind == "poll":
        question, options = pick(rng, POLL_QUESTIONS)
        cuts = sorted(between(rng, 0, 100) for _ in range(len(options) - 1))
        shares = [b - a for a, b in zip([0] + cuts, cuts + [100])]
        m.poll_question, m.poll_type = question, pick(rng, ["Anonymous Poll", "Anonymous Quiz"])
        m.poll_options = [PollOption(i, t, p) for i, (t, p) in enumerate(zip(options, shares))]
    elif kind == "location":
        m.title = pick(rng, list(PLACES))
        m.latitude, m.longitude = lat, lon = PLACES[m.title]
        m.title = None  # a bare location shows no name
        m.url = f"https://maps.google.com/maps?q={lat},{lon}&ll={lat},{lon}&z=16"
        m.thumbnail_url = f"https://static-maps.example.invalid/map?ll={lon},{lat}&z=15&pt={lon},{lat}"
    elif kind == "contact":
        m.title, m.phone = pick(rng, CONTACTS)
    if m.duration_seconds is not None:
        m.duration_text = duration_text(m.duration_seconds)
    return m


def make_reactions(rng: random.Random, views: int) -> list[Reaction]:
    reactions = []
    if rng.random() < 0.05:
        n = between(rng, 1, max(1, views // 50))
        reactions.append(Reaction(0, None, None, n, format_count(n), count_precision(format_count(n)), paid=True))
    for glyph in several(rng, REACTION_EMOJI, between(rng, 1, 4)):
        n = max(1, int(views * rng.random() * 0.03))
        custom = f"53{rng.getrandbits(56):017d}"[:19] if rng.random() < 0.1 else None
        text = format_count(n)
        reactions.append(Reaction(len(reactions), None if custom else glyph, custom, n, text,
                                  count_precision(text)))
    reactions.sort(key=lambda r: (not r.paid, -(r.count or 0)))
    for i, r in enumerate(reactions):
        r.position = i
    return reactions


def generate_posts(username: str, n_posts: int, *, seed: int = 0, first_id: int = 1,
                   start: datetime | None = None, end: datetime | None = None,
                   channel_title: str = "", every_kind: bool = True) -> list[Post]:
    rng = random.Random(f"{username}/{seed}")
    start = start or datetime(2023, 1, 2, 8, 0, tzinfo=timezone.utc)
    end = end or datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
    step = max(60, int((end - start).total_seconds() / max(n_posts, 1)))
    when = start
    next_id = first_id
    posts: list[Post] = []
    for i in range(n_posts):
        if i and rng.random() < 0.04:  # deleted messages leave holes in the ids
            next_id += between(rng, 1, 3)
        when += timedelta(seconds=between(rng, step // 3, step * 5 // 3))
        kind = "service" if i == 0 and first_id == 1 else _KINDS[bisect(_CUMULATIVE, rng.random() * _CUMULATIVE[-1])]
        if every_kind and n_posts - i <= len(_KINDS):  # newest posts: one of each kind
            kind = _KINDS[n_posts - i - 1]
        post = make_post(rng, username, next_id, kind, when, channel_title=channel_title, first=i == 0)
        next_id = (max(post.album_ids) if post.album_ids else post.id) + 1
        posts.append(post)
    return posts


def make_post(rng: random.Random, username: str, post_id: int, kind: str, when: datetime,
              *, channel_title: str = "", first: bool = False) -> Post:
    post = Post(channel=username, id=post_id, url=f"https://t.me/{username}/{post_id}",
                date=when.isoformat())
    if kind == "service":
        post.kind = "service"
        text = "Channel created" if first else pick(rng, SERVICE_TEXTS).format(title=channel_title)
        post.service_text = text
        return post
    r = rng.random()
    lang = "ru" if r < 0.5 else "en" if r < 0.85 else "no"
    link = None
    if kind == "text" and rng.random() < 0.35:
        url, site, title, description = pick(rng, SITES)
        n, year = between(rng, 100, 99999), when.year
        link = url.format(n=n)
        post.link_preview_url, post.link_preview_site = link, site
        post.link_preview_title = title.format(n=n, year=year)
        post.link_preview_description = description
        if rng.random() < 0.7:
            post.link_preview_image = media_url(rng, "jpg")
    has_text = kind in ("text", "photo", "album", "video", "document", "audio", "voice", "poll") and (
        kind == "text" or rng.random() < 0.8)
    if kind == "poll":
        has_text = False
    if has_text:
        post.text, post.hashtags, post.mentions = make_text(rng, lang, link=link)
        # every <a> in the text except hashtag searches, in text order: mentions first here
        post.links = [Link(url=f"https://t.me/{m}", domain="t.me", text=f"@{m}") for m in post.mentions]
        if link:
            post.links.append(Link(url=link, domain=link.split("/")[2], text=link))
        if rng.random() < 0.05:  # a channel with premium emoji: custom emoji in text
            glyphs = [e for e in EMOJI if e in post.text]
            if glyphs:
                post.html = text_to_html(post.text, {glyphs[0]: f"5{rng.getrandbits(60):018d}"[:19]})
    if kind == "album":
        size = between(rng, 2, 6)
        post.album_ids = list(range(post_id, post_id + size))
        post.grouped_id = f"{post_id}g"
        post.media = [make_media(rng, "video" if rng.random() < 0.2 else "photo", i, mid, lang)
                      for i, mid in enumerate(post.album_ids)]
    elif kind != "text":
        # the page links these media to their message; the others carry no id
        linked = kind in ("photo", "video", "gif", "voice", "audio", "document")
        post.media = [make_media(rng, kind, 0, post_id if linked else None, lang)]
    post.media_too_big = any(m.too_big for m in post.media)
    if kind == "text" and not link:
        r = rng.random()
        if r < 0.02:  # e.g. paid media the web preview cannot show at all
            post.open_in_telegram = True
            post.text, post.hashtags, post.mentions, post.links, post.html = None, [], [], [], None
        elif r < 0.04:  # e.g. a game: the page says so, and shows the caption
            post.media_not_supported = True
    post.views = int(rng.lognormvariate(8.3, 1.1)) + 10
    post.views_text = format_count(post.views)
    post.views_precision = count_precision(post.views_text)
    post.edited = rng.random() < 0.06
    if rng.random() < 0.2:
        post.author = pick(rng, AUTHORS)
    if rng.random() < 0.25 and kind not in ("sticker", "round_video"):
        title, source = pick(rng, FORWARD_SOURCES)
        post.forwarded_from_name = title
        if source:
            post.forwarded_from_channel = source
            post.forwarded_from_id = between(rng, 1, 5000)
            post.forwarded_from_url = f"https://t.me/{source}/{post.forwarded_from_id}"
    elif rng.random() < 0.06 and post_id > 5:
        post.reply_to_id = post_id - between(rng, 1, min(post_id - 1, 50))
        post.reply_to_channel = username
        post.reply_to_author = channel_title or username
        post.reply_to_text = sentence(rng, lang)
    if rng.random() < 0.6:
        post.reactions = make_reactions(rng, post.views)
    return post


def channel_counters(posts: list[Post], subscribers: int) -> dict[str, Count]:
    photos = sum(1 for p in posts for m in p.media if m.kind == "photo")
    videos = sum(1 for p in posts for m in p.media if m.kind in ("video", "gif", "round_video"))
    files = sum(1 for p in posts for m in p.media if m.kind in ("document", "audio"))
    links = sum(1 for p in posts if p.link_preview_url)
    counters = {"subscribers": count(subscribers)}
    for name, value in (("photos", photos), ("videos", videos), ("files", files), ("links", links)):
        if value:  # t.me shows only the counters that are not zero
            counters[name] = count(value)
    return counters


def generate_channel(username: str, n_posts: int, *, seed: int = 0, first_id: int = 1,
                     title: str | None = None, description: str | None = None,
                     verified: bool = False, channel_id: int | None = None,
                     subscribers: int | None = None, every_kind: bool = True,
                     start: datetime | None = None, end: datetime | None = None) -> tuple[Channel, list[Post]]:
    """A demo channel and its posts, oldest first. Deterministic for (username, seed)."""
    rng = random.Random(f"channel/{username}/{seed}")
    title = title or username.replace("_", " ").title()
    # The records hold no reference cycles; pausing the cycle collector saves a third of the time.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        posts = generate_posts(username, n_posts, seed=seed, first_id=first_id, channel_title=title,
                               every_kind=every_kind, start=start, end=end)
    finally:
        if gc_was_enabled:
            gc.enable()
    channel_id = channel_id or 1_000_000_000 + between(rng, 0, 999_999_999)
    for post in posts:
        post.channel_id = channel_id
    channel = Channel(
        username=username, title=title,
        description=description if description is not None else
        "Demo channel of a fictional embassy: consular news, culture, trade and weather.\nAll posts are generated.",
        avatar_url=media_url(rng, "jpg"), verified=verified, channel_id=channel_id,
        counters=channel_counters(posts, subscribers if subscribers is not None else between(rng, 500, 2_000_000)),
    )
    return channel, posts
