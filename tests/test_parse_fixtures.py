"""Whole-record tests on the project's own fixture pages (tests/fixtures/pages).

The pages are hand-written in the real markup's structure (classes, nesting, data-view
encoding) with invented content: the Fjordvik town library, a fictional channel.
"""

from dataclasses import replace
from pathlib import Path

import pytest

from telegram_datasette.model import Channel, Count, Link, Media, NotTelegramPage, Page, PollOption, Post, Reaction
from telegram_datasette.parse import parse_page

PAGES = Path(__file__).resolve().parent / "fixtures" / "pages"
CHAN = "fjordvik_bibliotek"
CDN = "https://cdn4.telesco.pe/file/"


def read(name: str) -> bytes:
    return (PAGES / name).read_bytes()


def post(id: int, **fields) -> Post:
    """A Post of the fixture channel with the values every post there shares."""
    return Post(channel=CHAN, id=id, url=f"https://t.me/{CHAN}/{id}", channel_id=1009876543, **fields)


def views(text: str, value: int, precision: int) -> dict:
    return {"views_text": text, "views": value, "views_precision": precision}


@pytest.fixture(scope="module")
def page() -> Page:
    return parse_page(read("fjordvik_bibliotek__s-before-122.html"), url=f"https://t.me/s/{CHAN}?before=122")


@pytest.fixture(scope="module")
def posts(page) -> dict[int, Post]:
    return {p.id: p for p in page.posts}


def test_page_level_fields(page):
    assert page.is_embed is False
    assert (page.before, page.after) == (101, 121)
    assert page.prev_url == f"https://t.me/s/{CHAN}?before=101"
    assert page.next_url == f"https://t.me/s/{CHAN}?after=121"
    assert page.canonical_url == f"https://t.me/s/{CHAN}?before=122"
    assert page.complete is True and page.not_found is False
    assert page.problems == [
        "post 119: unrecognised markup (tgme_widget_message_game_wrap, tgme_widget_message_game_image, "
        "tgme_widget_message_game_title); kept as kind=unknown with its raw HTML"
    ]
    assert page.unknown_count == 1
    # 103 is an album of 103-105, so ids skip from 103 to 106
    assert [p.id for p in page.posts] == [101, 102, 103] + list(range(106, 122))


def test_channel(page):
    assert page.channel == Channel(
        username=CHAN,
        title="Fjordvik folkebibliotek",
        description="Bøker, arrangementer og åpningstider.\nКниги и встречи по-русски.\n"
        "Books & events in English: fjordvik.example/bibliotek",
        description_html="Bøker, arrangementer og åpningstider.<br>Книги и встречи по-русски.<br>"
        'Books &amp; events in English: <a href="https://fjordvik.example/bibliotek" '
        'rel="noopener noreferrer nofollow">fjordvik.example/bibliotek</a>',
        avatar_url=CDN + "fjordvik-avatar-token.jpg",
        verified=False,
        channel_id=1009876543,
        counters={
            "subscribers": Count("1.2K", 1200, 50),
            "photos": Count("48", 48, 0),
            "videos": Count("7", 7, 0),
            "files": Count("1", 1, 0),  # the page says "1 file"
            "links": Count("12", 12, 0),
        },
    )


def test_service_message(posts):
    assert posts[101] == post(101, kind="service", date="2026-09-01T07:00:00+00:00", service_text="Channel created")


def test_text_post_with_everything_inline(posts):
    assert posts[102] == post(
        102,
        date="2026-09-01T08:15:30+00:00",
        text="📚 Lesesirkelen møtes igjen på torsdag kl. 18!\n\n"
        "Vi leser «Havet om høsten» – en roman vi har valgt sammen. Slutten er helt uventet.\n"
        "Påmelding: fjordvik.example/bibliotek/lesesirkel eller hos @fjordvik_kommune\n\n"
        "#lesesirkel #bibliotek",
        html="📚 <b>Lesesirkelen</b> møtes igjen på torsdag kl. 18!<br><br>"
        "Vi leser <i>«Havet om høsten»</i> – en roman vi har valgt sammen. "
        'Slutten er <span class="tg-spoiler">helt uventet</span>.<br>'
        'Påmelding: <a href="https://fjordvik.example/bibliotek/lesesirkel" rel="noopener noreferrer nofollow">'
        "fjordvik.example/bibliotek/lesesirkel</a> eller hos "
        '<a href="https://t.me/fjordvik_kommune" rel="noopener noreferrer nofollow">@fjordvik_kommune</a><br><br>'
        f'<a href="https://t.me/s/{CHAN}?q=%23lesesirkel" rel="noopener noreferrer nofollow">#lesesirkel</a> '
        f'<a href="https://t.me/s/{CHAN}?q=%23bibliotek" rel="noopener noreferrer nofollow">#bibliotek</a>',
        **views("1.51M", 1_510_000, 5_000),
        edited=True,
        author="Kari Nordmann",
        hashtags=["lesesirkel", "bibliotek"],
        mentions=["fjordvik_kommune"],
        links=[
            Link("https://fjordvik.example/bibliotek/lesesirkel", "fjordvik.example",
                 "fjordvik.example/bibliotek/lesesirkel"),
            Link("https://t.me/fjordvik_kommune", "t.me", "@fjordvik_kommune"),
        ],
        reactions=[
            Reaction(0, None, None, 12, "12", 0, paid=True),
            Reaction(1, "👍", None, 1200, "1.2K", 50),
            Reaction(2, None, "5370000000000000002", 35, "35", 0),
        ],
        # its hidden "Please open Telegram" fallback is not a notice a person sees
        open_in_telegram=False,
    )


def test_album_of_photos_and_video(posts):
    assert posts[103] == post(
        103,
        date="2026-09-02T10:00:00+00:00",
        text="Фотографии с осенней книжной ярмарки. Спасибо всем, кто пришёл!",
        html="Фотографии с осенней книжной ярмарки. Спасибо всем, кто пришёл!",
        **views("3.06K", 3060, 5),
        grouped_id="103g",
        album_ids=[103, 104, 105],
        media=[
            Media(0, "photo", message_id=103, url=CDN + "fjordvik-album-1.jpg"),
            Media(1, "video", message_id=104, url=CDN + "fjordvik-album-2.mp4?token=abc",
                  thumbnail_url=CDN + "fjordvik-album-2-thumb.jpg", duration_seconds=15, duration_text="0:15"),
            Media(2, "photo", message_id=105, url=CDN + "fjordvik-album-3.jpg"),
        ],
    )
    assert posts[103].content_kind == "album"


def test_video(posts):
    assert posts[106] == post(
        106,
        date="2026-09-02T12:30:00+00:00",
        text="A short tour of the new reading room, now open on Saturdays.",
        html="A short tour of the new reading room, now open on Saturdays.",
        **views("630", 630, 0),
        media=[Media(0, "video", message_id=106, url=CDN + "fjordvik-video.mp4?token=def",
                     thumbnail_url=CDN + "fjordvik-video-thumb.jpg", duration_seconds=65, duration_text="1:05",
                     width=1280, height=720)],
    )
    # every playable video carries a hidden "not supported" label: not a notice
    assert posts[106].media_not_supported is False


def test_gif(posts):
    assert posts[107] == post(
        107,
        date="2026-09-03T09:00:00+00:00",
        **views("149K", 149_000, 500),
        media=[Media(0, "gif", message_id=107, url=CDN + "fjordvik-gif.mp4?token=ghi",
                     thumbnail_url=CDN + "fjordvik-gif-thumb.jpg", width=480, height=360)],
    )


def test_round_video(posts):
    assert posts[108] == post(
        108,
        date="2026-09-03T11:11:11+00:00",
        **views("2", 2, 0),
        media=[Media(0, "round_video", url=CDN + "fjordvik-round.mp4?token=jkl",
                     thumbnail_url=CDN + "fjordvik-round-thumb.jpg", duration_seconds=21, duration_text="0:21")],
    )


def test_voice_forwarded_from_a_hidden_user(posts):
    assert posts[109] == post(
        109,
        date="2026-09-04T16:20:00+00:00",
        text="Eventyrstund på radio: hør hele opptaket her.",
        html="Eventyrstund på radio: hør hele opptaket her.",
        **views("88", 88, 0),
        forwarded_from_name="Ingrid Berg",  # no link: a user who hides their account
        media=[Media(0, "voice", message_id=109, url=CDN + "fjordvik-voice.ogg?token=mno",
                     duration_seconds=42, duration_text="0:42")],
    )


def test_audio_and_document(posts):
    assert posts[110] == post(
        110,
        date="2026-09-05T09:45:00+00:00",
        **views("1,234", 1234, 0),
        media=[Media(0, "audio", message_id=110, title="Fjordviks vise", performer="Bygdekoret")],
    )
    assert posts[111] == post(
        111,
        date="2026-09-05T10:00:00+00:00",
        text="Nye åpningstider fra 1. oktober.",
        html="Nye åpningstider fra 1. oktober.",
        **views("1 234", 1234, 0),
        media=[Media(0, "document", message_id=111, title="Åpningstider_2026.pdf", size_text="214.5 KB")],
    )


def test_sticker(posts):
    assert posts[112] == post(
        112,
        date="2026-09-05T12:00:00+00:00",
        **views("57", 57, 0),
        media=[Media(0, "sticker", url=CDN + "fjordvik-sticker.webp?token=pqr")],
    )
    assert posts[112].media_not_supported is False  # the sticker's fallback is hidden


def test_poll(posts):
    assert posts[113] == post(
        113,
        date="2026-09-06T08:00:00+00:00",
        **views("410", 410, 0),
        media=[Media(0, "poll", poll_question="Hvilken sjanger vil dere ha mer av?", poll_type="Anonymous Poll",
                     poll_options=[PollOption(0, "Krim", 52), PollOption(1, "Lokalhistorie", 31),
                                   PollOption(2, "Tegneserier 💬", 17)])],
    )


def test_location_and_contact(posts):
    maps = "https://maps.google.com/maps?q=62.472205,6.149482&ll=62.472205,6.149482&z=16"
    image = ("https://static-maps.yandex.ru/1.x/?l=map&ll=6.149482,62.472205&z=15&size=600,300&scale=1.5"
             "&pt=6.149482,62.472205,comma&lang=en_US")
    assert posts[114] == post(
        114,
        date="2026-09-06T09:30:00+00:00",
        **views("77", 77, 0),
        media=[Media(0, "location", url=maps, thumbnail_url=image, latitude=62.472205, longitude=6.149482)],
    )
    assert posts[115] == post(
        115,
        date="2026-09-06T10:00:00+00:00",
        **views("64", 64, 0),
        media=[Media(0, "contact", title="Bibliotekets skranke", phone="+47 700 00 000")],
    )


def test_link_preview(posts):
    url = "https://www.Fjordvik.example/events/author-evening"
    assert posts[116] == post(
        116,
        date="2026-09-07T14:00:00+00:00",
        text=f"Author evening on 14 October: {url}",
        html=f'Author evening on 14 October: <a href="{url}" rel="noopener noreferrer nofollow">{url}</a>',
        **views("2.4K", 2400, 50),
        link_preview_url=url,
        link_preview_site="Fjordvik kommune",
        link_preview_title="Forfatterkveld i biblioteket",
        link_preview_description="Møt tre lokale forfattere.\nGratis inngang & kaffe.",
        link_preview_image=CDN + "fjordvik-preview.jpg",
        links=[Link(url, "fjordvik.example", url)],  # host lowercased, "www." dropped
    )


def test_forward_with_author_and_too_big_video(posts):
    assert posts[117] == post(
        117,
        date="2026-09-08T18:00:00+00:00",
        text="Opptak fra kommunestyremøtet om det nye biblioteket.",
        html="Opptak fra kommunestyremøtet om det nye biblioteket.",
        **views("5.7K", 5700, 50),
        forwarded_from_name="Fjordvik kommune",
        forwarded_from_channel="fjordvik_kommune",
        forwarded_from_id=455,
        forwarded_from_url="https://t.me/fjordvik_kommune/455",
        forwarded_from_author="Ola Hansen",
        media_too_big=True,
        media=[Media(0, "video", message_id=117, thumbnail_url=CDN + "fjordvik-bigvideo-thumb.jpg",
                     duration_seconds=3723, duration_text="1:02:03", width=848, height=477, too_big=True)],
    )


REPLY_118 = dict(
    date="2026-09-09T07:05:00+00:00",
    text="Напоминаем: встреча читательского клуба перенесена на пятницу.",
    html="Напоминаем: встреча читательского клуба перенесена на пятницу.",
    **views("901", 901, 0),
    reply_to_id=102,
    reply_to_channel=CHAN,
    reply_to_author="Fjordvik folkebibliotek",
    reply_to_text="📚 Lesesirkelen møtes igjen på torsdag kl. 18!",
    via_bot="fjordvik_bot",
    reactions=[Reaction(0, "❤", None, 3, "3", 0)],
)


def test_reply_via_bot(posts):
    assert posts[118] == post(118, **REPLY_118)


def test_unknown_block_keeps_raw_html(posts):
    unknown = posts[119]
    assert unknown.raw_html.startswith('<div class="tgme_widget_message text_not_supported_wrap js-widget_message"')
    assert "tgme_widget_message_game_title" in unknown.raw_html and unknown.raw_html.endswith("</div>")
    assert unknown == post(
        119,
        kind="unknown",
        date="2026-09-09T12:00:00+00:00",
        text="Prøv quizen vår!",
        html="Prøv quizen vår!",
        **views("15", 15, 0),
        raw_html=unknown.raw_html,
    )
    assert unknown.content_kind == "unknown"


def test_visible_notices(posts):
    assert posts[120] == post(
        120,
        date="2026-09-10T08:00:00+00:00",
        text="Se filmen i appen.",
        html="Se filmen i appen.",
        **views("40", 40, 0),
        media_not_supported=True,
    )
    assert posts[121] == post(121, date="2026-09-10T09:00:00+00:00", **views("9", 9, 0), open_in_telegram=True)


def test_notice_labels_never_leak_into_text(page):
    for p in page.posts:
        for label in ("Media is too big", "not supported", "Please open Telegram", "VIEW IN TELEGRAM"):
            assert label not in (p.text or "") and label not in (p.html or "")


def test_embed_page():
    page = parse_page(read("fjordvik_bibliotek__embed-post-118.html"), url=f"https://t.me/{CHAN}/118?embed=1")
    assert page == Page(
        channel=Channel(username=CHAN, title="Fjordvik folkebibliotek",
                        avatar_url=CDN + "fjordvik-avatar-token.jpg", channel_id=1009876543),
        posts=[post(118, **REPLY_118)],
        is_embed=True,
    )


def test_truncated_inside_a_message_block():
    """Cut the page inside post 121's block: 120 is the last complete post."""
    html = read("fjordvik_bibliotek__s-before-122.html").decode()
    cut = html.index('data-post="fjordvik_bibliotek/121"') + 400
    page = parse_page(html[:cut])
    assert page.complete is False
    assert [p.id for p in page.posts][-1] == 120
    assert len(page.posts) == 18
    assert page.problems[-1] == "page is truncated after post 120; 1 incomplete message block (post 121) skipped"


def test_truncated_between_blocks():
    html = read("fjordvik_bibliotek__s-before-122.html").decode()
    cut = html.index('<div class="tgme_widget_message_wrap', html.index('data-post="fjordvik_bibliotek/121"') - 300)
    page = parse_page(html[: cut + 5])  # ends in "<div " like the real truncated capture
    assert page.complete is False and page.posts[-1].id == 120
    assert page.problems[-1] == (
        "page is truncated after post 120 (the document ends before </html>); no incomplete message block found"
    )


def test_not_telegram_fixture():
    with pytest.raises(NotTelegramPage, match="not a Telegram page"):
        parse_page(read("fjordvik_kommune__not-telegram.html"))


def test_empty_file(tmp_path):
    empty = tmp_path / "empty.html"
    empty.write_bytes(b"")
    with pytest.raises(NotTelegramPage, match="empty input"):
        parse_page(empty.read_bytes())


def test_str_and_bytes_give_the_same_page():
    raw = read("fjordvik_bibliotek__s-before-122.html")
    assert parse_page(raw) == parse_page(raw.decode("utf-8"))


def test_parse_is_pure_and_repeatable(page):
    again = parse_page(read("fjordvik_bibliotek__s-before-122.html"), url=f"https://t.me/s/{CHAN}?before=122")
    assert again == page
    assert replace(again, problems=[]) != page  # sanity: the comparison is not vacuous


def test_post_html_is_already_what_nh3_keeps(page):
    from telegram_datasette.parse import sanitise_html

    for p in page.posts:
        if p.html is not None:
            assert sanitise_html(p.html) == p.html, p.id
