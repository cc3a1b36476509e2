"""The parser on real t.me captures (../shared/telegram-pages/real, never copied in).

Expectations were read from the HTML itself and cross-checked with the message-type table
in SOURCES.md. One deliberate difference: SOURCES counts 10 "service" for the tchantest
fragments, which is the number of `tgme_widget_message_service_date` day separators; the
blocks with the `service_message` class are 4 (ids 1, 2, 3, 92).
"""

from collections import Counter
from pathlib import Path

import pytest
from selectolax.lexbor import LexborHTMLParser

from telegram_datasette.model import Count, NotTelegramPage, PollOption
from telegram_datasette.parse import parse_media, parse_page, sanitise_html

REAL = Path(__file__).resolve().parents[2] / "shared" / "telegram-pages" / "real"
FRAGMENTS = REAL / "fragments"


def load(name: str) -> bytes:
    path = REAL / name
    if not path.is_file():
        pytest.skip(f"real capture {name} not available under {REAL}")
    return path.read_bytes()


def parsed(name: str):
    return parse_page(load(name))


def media_kinds(page) -> dict:
    return dict(Counter(m.kind for p in page.posts for m in p.media))


# One row per full capture: what the page shows, read from its HTML.
PAGES = {
    "B_C_Kaliningrad__s-before-2203.html": dict(
        ids=[2173, 2183, 2184, 2185, 2186, 2187, 2189, 2190, 2191, 2192, 2201, 2202],
        first_date="2026-09-17T06:53:51+00:00", last_date="2026-09-20T14:12:00+00:00",
        views={2173: ("167", 167), 2202: ("220", 220)},
        media={"photo": 22, "video": 6, "audio": 1},
        edited=[2190], too_big=[2183, 2184, 2189],
        forwards={2189: ("Раввин Авраам Борух Дайч", "https://t.me/rabbikaliningrad/43")},
        albums={2173: list(range(2173, 2183)), 2187: [2187, 2188], 2192: list(range(2192, 2200))},
        reactions=51,
        channel=("B_C_Kaliningrad", "Бейт Хабад Калининград", 1721486207),
        counters={"subscribers": ("267", 267), "photos": ("1.93K", 1930), "videos": ("120", 120),
                  "links": ("444", 444)},
        before=2173, after=2202,
        prev_url="https://t.me/s/B_C_Kaliningrad?before=2173",
        next_url="https://t.me/s/B_C_Kaliningrad?after=2202",
        canonical="https://t.me/s/B_C_Kaliningrad?before=2203",
    ),
    "asprinntrendy__s-page.html": dict(
        ids=[48312, 48316, 48320, 48321, 48325, 48328, 48331],
        first_date="2026-08-01T13:49:59+00:00", last_date="2026-08-01T13:50:05+00:00",
        views={48312: ("28", 28), 48331: ("55", 55)},
        media={"photo": 18},
        forwards={48312: ("AsprinTrendy", "https://t.me/asprinntrendy/38925"),
                  48331: ("AsprinTrendy", "https://t.me/asprinntrendy/42469")},
        albums={48312: [48312, 48313, 48314, 48315], 48325: [48325, 48326, 48327]},
        channel=("asprinntrendy", "AsprinTrendy", 1590667973),
        counters={"subscribers": ("5.19K", 5190), "photos": ("40.4K", 40400)},
        before=48312, canonical="https://t.me/s/asprinntrendy?before=48332",
    ),
    "astrapress__embed-post-126130-reply.html": dict(
        ids=[126130], embed=True,
        first_date="2026-09-24T08:55:25+00:00",
        views={126130: ("57.8K", 57800)},
        media={"photo": 1}, edited=[126130],
        replies={126130: (94686, "astrapress", "ASTRA")},
        channel=("astrapress", "ASTRA", 1700501351),
    ),
    "durov__s-page.html": dict(
        ids=[*range(519, 530), *range(531, 540)],
        first_date="2026-05-20T15:38:10+00:00", last_date="2026-08-08T21:11:14+00:00",
        views={519: ("8.67M", 8_670_000), 539: ("826K", 826_000), 527: ("23.7M", 23_700_000)},
        media={"video": 1, "gif": 5, "photo": 3},
        edited=[521, 527, 535, 538],
        previews={521: "https://gram.org/", 525: "https://telegram.org/blog/watch-apps-and-more",
                  538: "https://telegram.org/safety", 539: "https://t.me/durov/537"},
        reactions=104, paid_reactions=20, signatures=20,
        channel=("durov", "Pavel Durov", 1006503122), verified=True,
        counters={"subscribers": ("11.3M", 11_300_000), "photos": ("101", 101), "videos": ("45", 45),
                  "links": ("195", 195)},
        before=519, prev_url="https://t.me/s/durov?before=519", canonical="https://t.me/s/durov?before=540",
    ),
    "feedjam__s-page.html": dict(
        ids=[1, 2, 3, 4, 5, 6, 7], service={1: "Channel created"},
        first_date="2023-07-29T08:50:03+00:00", last_date="2023-07-29T08:52:03+00:00",
        views={2: ("2", 2)}, media={"photo": 1},
        channel=("feedjam", "feedjam", 1922921053), canonical="https://t.me/s/feedjam?before=8",
        counters={"subscribers": ("1", 1), "photos": ("1", 1)},  # "1 subscriber", "1 photo"
    ),
    "infoscape_test__s-page-2022.html": dict(
        ids=[1, 2, 3, 4, 5, 7], service={1: "Channel created"},
        first_date="2022-05-24T19:06:50+00:00", last_date="2022-05-24T19:10:44+00:00",
        media={"photo": 1, "document": 1},
        replies={7: (2, "infoscape_test", "infoscape_test")},
        previews={4: "https://yandex.ru/"},
        channel=("infoscape_test", "infoscape_test", 1523057384),
        canonical="https://t.me/s/infoscape_test?before=8",
        counters={"files": ("1", 1)},
    ),
    "meduzalive__embed-post-1-service__prettified.html": dict(
        ids=[1], embed=True, service={1: None}, first_date="2016-04-06T11:44:58+00:00",
        channel=("meduzalive", "Медуза — LIVE", 1036240821),
    ),
    "meduzalive__embed-post-40957-reply__prettified.html": dict(
        ids=[40957], embed=True, first_date="2021-04-09T18:38:26+00:00",
        views={40957: ("75.5K", 75500)},
        replies={40957: (40953, "meduzalive", "Медуза — LIVE")},
    ),
    "meduzalive__embed-post-40973-linkpreview__prettified.html": dict(
        ids=[40973], embed=True, views={40973: ("69.3K", 69300)},
        previews={40973: "https://mdza.io/KIvp8C9R7Kg"},
    ),
    "meduzalive__embed-post-40978-photo__prettified.html": dict(
        ids=[40978], embed=True, views={40978: ("94.0K", 94000)}, media={"photo": 1},
    ),
    "meduzalive__embed-post-40984-forward__prettified.html": dict(
        ids=[40984], embed=True, first_date="2021-04-11T08:20:34+00:00",
        views={40984: ("51.7K", 51700)}, media={"photo": 1},
        forwards={40984: ("СТОПКОРОНАВИРУС.РФ", "https://t.me/stopcoronavirusrussia/4268")},
    ),
    "melhagram__embed-post-129-voice__prettified.html": dict(
        ids=[129], embed=True, views={129: ("3.5K", 3500)}, media={"voice": 1},
        channel=("melhagram", "Ебейший Чилзон", 1455926914),
    ),
    "naturallover__s-page.html": dict(
        ids=[18456, 18460, 18464, 18468, 18472],
        views={18456: ("193", 193), 18472: ("312", 312)},
        media={"photo": 18, "video": 2}, too_big=[18456, 18464],
        forwards={18456: ("Natural Love - Wholesale", "https://t.me/naturallover/16653")},
        albums={18456: [18456, 18457, 18458, 18459]},
        channel=("naturallover", "Natural Love - Wholesale", 1272574888),
        before=18456, canonical="https://t.me/s/naturallover?before=18473",
    ),
    "prstnk_eprst__s-page.html": dict(
        ids=[1, 2], service={1: "Channel created"}, views={2: ("1", 1)}, media={"photo": 1},
        channel=("prstnk_eprst", "PRSTNK - [простенок]", 3976510481),
        canonical="https://t.me/s/prstnk_eprst?before=3",
    ),
    "rosearyaa__s-page.html": dict(
        ids=[2523, 2524, 2529, 2530, 2537, 2542],
        first_date="2026-06-28T10:40:14+00:00", last_date="2026-07-04T09:41:09+00:00",
        media={"photo": 18, "video": 2},
        albums={2524: [2524, 2525, 2526, 2527, 2528], 2530: list(range(2530, 2537))},
        channel=("rosearyaa", "RoseArya", 1988575348), before=2523,
        canonical="https://t.me/s/rosearyaa?before=2543",
    ),
    "rybar__s-page.html": dict(
        ids=[81500, 81501, 81502, 81505, 81506, 81507, 81508, 81510, 81513, 81514, 81515, 81516, 81517,
             81518, 81519],
        views={81500: ("149K", 149_000), 81513: ("93.6K", 93_600), 81519: ("16.2K", 16_200)},
        media={"photo": 13, "video": 4}, too_big=[81507],
        forwards={81500: ("Рыбарь", "https://t.me/rybar/80774"),
                  81506: ("Два майора", "https://t.me/dva_majors/95608"),
                  81507: ("ТАКТИКАРЬ", "https://t.me/rybar_tactical/34")},
        replies={81510: (81507, "rybar", "ТАКТИКАРЬ"), 81516: (81513, "rybar", "Рыбарь")},
        previews={81505: "https://t.me/rybar/81497", 81506: "https://t.me/dva_majors/95523",
                  81514: "https://t.me/rybar/81511?single"},
        albums={81502: [81502, 81503, 81504], 81508: [81508, 81509], 81510: [81510, 81511, 81512]},
        channel=("rybar", "Рыбарь", 1326223284),
        counters={"subscribers": ("1.51M", 1_510_000), "files": ("83", 83), "links": ("41.7K", 41_700)},
        before=81500, canonical="https://t.me/s/rybar?before=81520",
    ),
    "streaminside__embed-post-2252-album-mixed__prettified.html": dict(
        ids=[2252], embed=True, media={"photo": 1, "video": 1}, albums={2252: [2252, 2253]},
    ),
    "tvrain__embed-post-42053-album-videos__prettified.html": dict(
        ids=[42053], embed=True, media={"video": 3}, albums={42053: [42053, 42054, 42055]},
        channel=("tvrain", "Телеканал Дождь", 1005031786), verified=True,
    ),
    "tvrain__embed-post-42161-video__prettified.html": dict(
        ids=[42161], embed=True, views={42161: ("80.3K", 80300)}, media={"video": 1},
        edited=[42161], too_big=[42161], verified=True,
    ),
    "tvrain__embed-post-42166-album-photos__prettified.html": dict(
        ids=[42166], embed=True, media={"photo": 7}, albums={42166: list(range(42166, 42173))}, verified=True,
    ),
    "wohnungenberlin__s-page.html": dict(
        ids=[202, 212, 213, 223],
        first_date="2026-01-29T13:04:48+00:00", last_date="2026-01-30T08:00:24+00:00",
        views={212: ("190", 190)}, media={"photo": 21},
        albums={202: list(range(202, 212)), 213: list(range(213, 223))},
        channel=("wohnungenberlin", "Wohnung Berlin", 1694747850), before=202,
        canonical="https://t.me/s/wohnungenberlin?before=224",
    ),
}


@pytest.fixture(scope="module", params=sorted(PAGES), ids=lambda name: name.split("__")[0] + "/" + name.split("__")[1][:20])
def case(request):
    name = request.param
    return PAGES[name], parsed(name)


def test_ids_and_kinds(case):
    expected, page = case
    assert [p.id for p in page.posts] == expected["ids"]
    assert page.is_embed is expected.get("embed", False)
    assert page.complete is True and page.not_found is False
    assert page.problems == [] and page.unknown_count == 0
    service = expected.get("service", {})
    assert {p.id: p.service_text for p in page.posts if p.kind == "service"} == service
    for p in page.posts:
        assert p.url == f"https://t.me/{p.channel}/{p.id}"
        if p.kind == "service":
            assert p.text is None and p.html is None


def test_dates(case):
    expected, page = case
    if "first_date" in expected:
        assert page.posts[0].date == expected["first_date"]
    if "last_date" in expected:
        assert page.posts[-1].date == expected["last_date"]
    assert all(p.date and p.date.endswith("+00:00") for p in page.posts)


def test_views(case):
    expected, page = case
    by_id = {p.id: p for p in page.posts}
    for post_id, (text, value) in expected.get("views", {}).items():
        assert (by_id[post_id].views_text, by_id[post_id].views) == (text, value)


def test_media_and_notices(case):
    expected, page = case
    assert media_kinds(page) == expected.get("media", {})
    assert [p.id for p in page.posts if p.media_too_big] == expected.get("too_big", [])
    assert [p.id for p in page.posts if p.edited] == expected.get("edited", [])
    # Hidden fallbacks ("Please open Telegram", the label in every video player) do not count.
    assert not any(p.media_not_supported or p.open_in_telegram for p in page.posts)
    for p in page.posts:
        assert [m.position for m in p.media] == list(range(len(p.media)))
        for label in ("Media is too big", "not supported in your browser", "Please open Telegram"):
            assert label not in (p.text or "")


def test_forwards_replies_previews(case):
    expected, page = case
    forwards = {p.id: (p.forwarded_from_name, p.forwarded_from_url) for p in page.posts if p.forwarded_from_name}
    for post_id, value in expected.get("forwards", {}).items():
        assert forwards[post_id] == value
    if "forwards" not in expected:
        assert forwards == {}
    replies = {p.id: (p.reply_to_id, p.reply_to_channel, p.reply_to_author) for p in page.posts if p.reply_to_id}
    assert replies == expected.get("replies", {})
    previews = {p.id: p.link_preview_url for p in page.posts if p.link_preview_url}
    assert previews == expected.get("previews", {})


# Albums per page, as counted in SOURCES.md (the rows above list some of them in full).
ALBUM_COUNTS = {
    "B_C_Kaliningrad": 3, "asprinntrendy": 5, "naturallover": 5, "rosearyaa": 3, "rybar": 3,
    "wohnungenberlin": 2, "streaminside": 1, "tvrain": 1,
}


def test_albums(case):
    expected, page = case
    albums = {p.id: p.album_ids for p in page.posts if p.grouped_id}
    for post_id, ids in expected.get("albums", {}).items():
        assert albums[post_id] == ids
    expected_count = ALBUM_COUNTS.get(page.channel.username, 0)
    if page.channel.username == "tvrain" and not expected.get("albums"):
        expected_count = 0  # the single-video tvrain embed
    assert len(albums) == expected_count
    for p in page.posts:
        if p.grouped_id:
            assert p.grouped_id == f"{p.id}g"


def test_reactions_and_signatures(case):
    expected, page = case
    assert sum(len(p.reactions) for p in page.posts) == expected.get("reactions", 0)
    assert sum(r.paid for p in page.posts for r in p.reactions) == expected.get("paid_reactions", 0)
    assert sum(1 for p in page.posts if p.author) == expected.get("signatures", 0)


def test_channel_and_pagination(case):
    expected, page = case
    if "channel" in expected:
        username, title, channel_id = expected["channel"]
        assert (page.channel.username, page.channel.title, page.channel.channel_id) == (username, title, channel_id)
        assert all(p.channel_id == channel_id for p in page.posts)
    assert page.channel.verified is expected.get("verified", False)
    for kind, (text, value) in expected.get("counters", {}).items():
        assert (page.channel.counters[kind].text, page.channel.counters[kind].value) == (text, value)
    assert (page.before, page.after) == (expected.get("before"), expected.get("after"))
    assert page.prev_url == expected.get("prev_url", page.prev_url)
    assert page.next_url == expected.get("next_url")
    assert page.canonical_url == expected.get("canonical")


# ---------------------------------------------------------------- details of single pages


def test_durov_first_post_in_full():
    page = parsed("durov__s-page.html")
    post = page.posts[0]
    assert post.text.startswith("🤖 Your Telegram inbox can now run itself.\n\nAssign a bot")
    assert post.text.endswith("⚙️ Start building!")
    assert post.author == "Pavel Durov"
    assert post.links[0].url == "https://core.telegram.org/bots/features#secretary-bots"
    assert post.links[0].domain == "core.telegram.org" and post.links[0].text == "Start building"
    video = post.media[0]
    assert (video.kind, video.duration_text, video.duration_seconds, video.too_big) == ("video", "0:09", 9, False)
    assert (video.width, video.height) == (1616, 1914)
    assert video.url.startswith("https://cdn4.telesco.pe/file/") and ".mp4" in video.url
    assert post.reactions[0].paid and post.reactions[0].count_text == "2.49K" and post.reactions[0].count == 2490
    assert post.reactions[1].custom_emoji_id == "5265077361648368841"
    assert (post.reactions[1].count, post.reactions[1].count_precision) == (23_400, 50)
    assert (post.views, post.views_precision) == (8_670_000, 5_000)
    assert page.channel.description == "Founder of Telegram."
    assert page.channel.avatar_url.startswith("https://cdn4.telesco.pe/file/mgt7sgV1VWpTpiLNl4nmJ5ym8Kg")


def test_durov_link_preview_fields():
    post = {p.id: p for p in parsed("durov__s-page.html").posts}[539]
    assert post.link_preview_site == "Telegram"
    assert post.link_preview_title == "Pavel Durov"
    assert post.link_preview_description.startswith("🧠 The 2026 International Olympiad in Artificial Intelligence")
    assert post.link_preview_image.startswith("https://cdn4.telesco.pe/file/UuWno5rCe02pMrDNvnjoGBO6")
    gram = {p.id: p for p in parsed("durov__s-page.html").posts}[521]
    assert (gram.link_preview_site, gram.link_preview_title, gram.link_preview_description) == (
        "Gram", None, "The native currency of TON")


def test_kaliningrad_audio_and_quote():
    posts = {p.id: p for p in parsed("B_C_Kaliningrad__s-before-2203.html").posts}
    audio = posts[2186].media[0]
    assert (audio.kind, audio.title, audio.performer) == ("audio", "קה אכסוף - קרלין", "יוסף משה כהנא")
    assert "<blockquote>Я хочу пожелать" in posts[2184].html
    assert posts[2183].media[0].url is None and posts[2183].media[0].duration_text == "4:09"
    assert posts[2173].reactions[0].emoji == "❤" and posts[2173].reactions[0].count == 11


def test_infoscape_document_and_reply_text():
    posts = {p.id: p for p in parsed("infoscape_test__s-page-2022.html").posts}
    doc = posts[5].media[0]
    assert (doc.kind, doc.title, doc.size_text) == ("document", "2022-05-24 22.09.34.jpg", "52.6 KB")
    assert posts[7].reply_to_text == "простое сообщение" and posts[7].text == "ответ на сообщение"


def test_rybar_reply_and_forward():
    posts = {p.id: p for p in parsed("rybar__s-page.html").posts}
    assert posts[81510].reply_to_text.startswith("📝Как защитить тыловые трассы📝")
    assert posts[81506].forwarded_from_channel == "dva_majors" and posts[81506].forwarded_from_id == 95608
    assert posts[81506].hashtags == ["Сводка"]
    assert posts[81506].text.startswith("#Сводка на утро 4 июля 2026 года")
    # 42 hashtag links (href="?q=%23...") on the page, none of them repeated within a post
    assert sum(len(p.hashtags) for p in posts.values()) == 42
    assert all(not link.url.startswith("https://t.me/s/rybar?q=") for p in posts.values() for link in p.links)


def test_solokumi_truncated_keeps_readable_posts():
    page = parsed("solokumi__s-page__truncated.html")
    assert page.complete is False
    assert [p.id for p in page.posts] == [419, 420, 421, 422, 423, 424]
    assert [p.id for p in page.posts if p.edited] == [419, 421, 422, 424]
    assert page.problems == [
        "page is truncated after post 424 (the document ends before </html>); no incomplete message block found"
    ]
    last = page.posts[-1]
    assert (last.views_text, last.date) == ("8.47K", "2026-06-08T14:07:47+00:00")
    assert [(r.emoji, r.custom_emoji_id, r.count_text, r.paid) for r in last.reactions][:2] == [
        (None, None, "2", True), ("🔥", None, "75", False)]
    assert last.reactions[5].custom_emoji_id == "5451655521285207600"
    assert sum(len(p.reactions) for p in page.posts) == 52
    assert page.channel.verified is True and page.channel.counters["files"] == Count("2", 2, 0)
    assert not any(p.open_in_telegram for p in page.posts)  # 5 hidden fallbacks


def test_solokumi_cut_inside_a_block():
    """Cut the real page inside post 424's block: it is dropped, 423 is the last post."""
    html = load("solokumi__s-page__truncated.html").decode()
    cut = html.index('data-post="solokumi/424"') + 2000
    page = parse_page(html[:cut])
    assert page.complete is False and [p.id for p in page.posts][-1] == 423
    assert page.problems == ["page is truncated after post 423; 1 incomplete message block (post 424) skipped"]


def test_not_found_embed():
    page = parsed("unknown__embed-post-not-found__prettified.html")
    assert page.not_found is True and page.posts == [] and page.is_embed is True


def test_service_embed_is_service_without_text():
    post = parsed("meduzalive__embed-post-1-service__prettified.html").posts[0]
    assert (post.kind, post.text, post.service_text, post.date) == ("service", None, None, "2016-04-06T11:44:58+00:00")


def test_voice_embed():
    voice = parsed("melhagram__embed-post-129-voice__prettified.html").posts[0].media[0]
    assert (voice.kind, voice.duration_text, voice.duration_seconds) == ("voice", "0:51", 51)
    assert voice.url.startswith("https://cdn4.telesco.pe/file/")


def test_prettified_forward_text_has_clean_lines():
    post = parsed("meduzalive__embed-post-40984-forward__prettified.html").posts[0]
    lines = post.text.split("\n")
    assert lines[0].startswith("За последние сутки в России выявлено 8 702 случая COVID-19")
    assert lines[0].endswith("❗️")
    assert all(line == line.strip() for line in lines)
    assert lines[-1] == "#стопкоронавирус #здоровьевприоритете #coronavirus"


# ---------------------------------------------------------------- fragments


def fragment(name: str) -> bytes:
    path = FRAGMENTS / name
    if not path.is_file():
        pytest.skip(f"real fragment {name} not available under {FRAGMENTS}")
    return path.read_bytes()


def one_post(name: str):
    page = parse_page(fragment(name))
    assert len(page.posts) == 1 and page.problems == []
    return page.posts[0]


def bare_media(name: str):
    tree = LexborHTMLParser(fragment(name).decode())
    return parse_media(tree.body)


def test_fragment_video_gif():
    [gif] = bare_media("any2feed__fragment-media_video_gif__reformatted.html")
    assert (gif.kind, gif.message_id, gif.too_big) == ("gif", 6, False)
    assert (gif.width, gif.height) == (800, 648)


def test_fragment_video_too_big():
    [video] = bare_media("any2feed__fragment-media_video_too_big__reformatted.html")
    assert (video.kind, video.too_big, video.url, video.duration_seconds) == ("video", True, None, 69)


def test_fragment_bare_media_is_not_a_page():
    with pytest.raises(NotTelegramPage, match="no message block"):
        parse_page(fragment("any2feed__fragment-poll__reformatted.html"))


def test_fragment_poll():
    [poll] = bare_media("any2feed__fragment-poll__reformatted.html")
    assert (poll.poll_question, poll.poll_type) == ("Как лучше?", "Anonymous Poll")
    assert poll.poll_options == [
        PollOption(0, "Несколько постов в день", 16),
        PollOption(1, "Один пост в несколько дней", 83),
        PollOption(2, "Свой вариант в комментарии", 3),
    ]


def test_fragment_message_poll():
    post = one_post("any2feed__fragment-message_poll__reformatted.html")
    assert (post.channel, post.id, post.views_text) == ("it_begin", 488, "1.1K")
    assert post.media[0].kind == "poll" and post.content_kind == "poll"


def test_fragment_sticker_with_signature():
    post = one_post("any2feed__fragment-message_sticker__reformatted.html")
    sticker = post.media[0]
    assert sticker.kind == "sticker" and sticker.url.startswith("https://cdn4.telegram-cdn.org/file/")
    assert post.author == "🅰️User"
    assert post.media_not_supported is False  # its fallback sits in a media_not_supported_cont


def test_fragment_signature():
    post = one_post("any2feed__fragment-message_with_from_author__reformatted.html")
    assert (post.text, post.author, post.date) == ("test", "🅰️rkadiy Ivanov", "2023-02-28T16:38:34+00:00")


def test_fragment_voice_forwarded_from_hidden_user():
    post = one_post("any2feed__fragment-message_voice__reformatted.html")
    assert (post.media[0].kind, post.media[0].duration_seconds) == ("voice", 1660)
    assert (post.forwarded_from_name, post.forwarded_from_url) == ("Спортивный Екб", None)
    assert post.mentions == ["kakberadio", "kakberadiobot"]
    assert post.text.startswith("Обсудили:\n\n- Сталина не забыть\n- Плохие фильмы")


def test_fragment_round_video():
    post = one_post("any2feed__fragment-message_media_round_video__reformatted.html")
    [video] = post.media
    assert (video.kind, video.duration_text, video.duration_seconds) == ("round_video", "0:44", 44)
    assert post.media_not_supported is False


def test_fragment_document_forwarded():
    post = one_post("any2feed__fragment-message_media_file__reformatted.html")
    doc = post.media[0]
    assert (doc.kind, doc.title, doc.size_text) == ("document", "Оппозиционные медиапроекты.pdf", "2.1 MB")
    assert (post.forwarded_from_channel, post.forwarded_from_id) == ("kremlinprachka", 20294)


def test_fragment_forwarded_photo():
    post = one_post("any2feed__fragment-message_media_forwarded_from__reformatted.html")
    assert post.forwarded_from_url == "https://t.me/dimsmirnov175/44604"
    assert [m.kind for m in post.media] == ["photo"]


def test_fragment_photo_and_video():
    post = one_post("any2feed__fragment-message_media_photo_and_video__reformatted.html")
    assert [(m.kind, m.message_id) for m in post.media] == [("video", 46908), ("photo", 46909), ("photo", 46910)]
    assert post.album_ids == [46908, 46909, 46910]


@pytest.mark.parametrize(
    "name, post_id, url, title",
    [
        ("any2feed__fragment-message_link_preview__reformatted.html", 22360,
         "https://vnnews.ru/georgiy-zotov-okkupaciya-volosatym-kr/", None),
        ("any2feed__fragment-message_link_preview_text_only__reformatted.html", 22368,
         "http://publication.pravo.gov.ru/Document/View/0001202302270011?index=7&rangeSize=1", None),
        ("any2feed__fragment-message_link_preview_video__reformatted.html", 11226,
         "https://t.me/shalnyak/5410", "Shalnyak"),
    ],
)
def test_fragment_link_previews(name, post_id, url, title):
    post = one_post(name)
    assert (post.id, post.link_preview_url) == (post_id, url)
    if title:
        assert post.link_preview_title == title


def test_fragment_text():
    post = one_post("any2feed__fragment-message_text__reformatted.html")
    assert (post.channel, post.id, post.views_text, post.channel_id) == ("topwar_official", 70991, "33.4K", 1084368520)
    assert post.text.startswith("Неопознанный летающий объект")


def test_tchantest_blocks():
    page = parse_page(fragment("tchantest__message-blocks__reformatted.html"))
    assert len(page.posts) == 30 and page.problems == []
    posts = {p.id: p for p in page.posts}
    assert sorted(p.id for p in page.posts if p.kind == "service") == [1, 2, 3, 92]
    assert posts[92].service_text == "tchan's test channel 👍 pinned «Going to pin this message»"
    assert media_kinds(page) == {"video": 5, "photo": 5, "sticker": 1, "audio": 1, "poll": 1,
                                 "round_video": 1, "location": 3, "voice": 1}
    assert [(m.kind, m.message_id, m.duration_text) for m in posts[84].media] == [
        ("video", 84, "0:27"), ("photo", 85, None), ("video", 86, "0:08"), ("photo", 87, None)]
    assert posts[84].text == "Multiple videos and pictures" and posts[84].views_text == "436.6K"
    assert posts[62].text == "Bigger\ntext\nmessage\nnumber\n34"
    assert (posts[5].author, posts[5].edited) == ("Álvaro Justen", True)
    assert (posts[79].author, posts[79].edited) == ("Álvaro Justen", False)
    assert posts[5].text == "Hello! Signed and edited message"
    loc = posts[10].media[0]
    assert (loc.latitude, loc.longitude) == (-23.930587176407, -44.086305367818)
    assert posts[12].media[0].title == "AUD-20130329-WA0000" and posts[12].media[0].performer == "portadosfundos"
    assert posts[13].media[0].kind == "voice" and posts[13].media[0].duration_seconds == 1
    assert posts[11].media[0].poll_type == "Anonymous Quiz"
    assert [o.text for o in posts[11].media[0].poll_options] == ["Opt1", "Opt2", "Opt3"]
    assert posts[5343].media_too_big and posts[5343].channel == "some_random_user"
    assert posts[18].media[0].url.startswith("https://cdn1.telegram-cdn.org/file/")  # not the blurred copy
    assert posts[7334].hashtags == ["Punição_ampliada", "Poda_de_árvores", "Tarifas_de_transmissão"]
    assert posts[7334].links[0].domain == "bit.ly"
    assert (posts[20].reply_to_id, posts[20].reply_to_text) == (19, "Video")
    assert posts[81].link_preview_image.startswith("https://cdn4.telegram-cdn.org/file/")
    assert posts[89].forwarded_from_channel == "some_user" and posts[89].forwarded_from_id is None
    assert posts[9].media[0].url.startswith("https://cdn1.telegram-cdn.org/file/")


def test_post_html_is_already_what_nh3_keeps():
    """Post HTML is built safe by construction; nh3 must find nothing to change in it."""
    names = sorted(PAGES) + ["solokumi__s-page__truncated.html"]
    checked = 0
    for name in names:
        for post in parsed(name).posts:
            if post.html is not None:
                assert sanitise_html(post.html) == post.html, (name, post.id)
                checked += 1
    tchan = parse_page(fragment("tchantest__message-blocks__reformatted.html"))
    for post in tchan.posts:
        if post.html is not None:
            assert sanitise_html(post.html) == post.html, post.id
    assert checked > 80
