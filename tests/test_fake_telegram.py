"""The fake Telegram over real HTTP on loopback: pages, pagination, redirects, faults."""

from __future__ import annotations

import re
import threading
import time

import httpx
import pytest
from click.testing import CliRunner

from devtools.demo import KIND_WEIGHTS, generate_channel
from devtools.fake_telegram import FakeChannel, FakeTelegram, cli, demo_channels


@pytest.fixture
def fake():
    fake = FakeTelegram(demo_channels(seed=3))
    with fake.serve() as url:
        with httpx.Client(base_url=url, timeout=10) as client:
            fake.client = client
            yield fake


def ids_on(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-post="[^/"]+/(\d+)"', html)]


def more(html: str, which: str) -> int | None:
    m = re.search(rf'class="tme_messages_more js-messages_more" data-{which}="(\d+)"', html)
    return int(m.group(1)) if m else None


def head_link(html: str, rel: str) -> str | None:
    m = re.search(rf'<link rel="{rel}" href="([^"]+)"', html)
    return m.group(1) if m else None


def test_newest_page_has_latest_posts_and_older_link(fake):
    channel = fake.channel("demo_embassy")
    r = fake.client.get("/s/demo_embassy")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    shown = ids_on(r.text)
    assert shown[-1] == channel.posts[-1].id
    assert more(r.text, "before") == shown[0]
    assert more(r.text, "after") is None  # nothing newer than the newest page
    assert head_link(r.text, "prev") == f"/s/demo_embassy?before={shown[0]}"
    assert head_link(r.text, "next") is None
    newest = max(channel.posts[-1].album_ids or [channel.posts[-1].id])
    assert head_link(r.text, "canonical") == f"/s/demo_embassy?before={newest + 1}"
    assert 'class="tgme_channel_info"' in r.text and 'verified-icon' in r.text


def test_page_covers_about_twenty_message_ids(fake):
    r = fake.client.get("/s/demo_embassy?before=200")
    channel = fake.channel("demo_embassy")
    occupied = sum(len(channel.post(i).album_ids) or 1 for i in ids_on(r.text))
    assert 20 <= occupied <= 20 + 10  # an album at the edge is shown whole
    assert max(ids_on(r.text)) < 200


def test_before_page_links_both_ways_like_real_pages(fake):
    r = fake.client.get("/s/demo_embassy?before=150")
    shown = ids_on(r.text)
    channel = fake.channel("demo_embassy")
    last = max(channel.post(shown[-1]).album_ids or [shown[-1]])
    assert more(r.text, "before") == shown[0]  # the oldest id shown
    assert more(r.text, "after") == last  # the newest id shown
    assert head_link(r.text, "next") == f"/s/demo_embassy?after={last}"
    assert head_link(r.text, "canonical") == f"/s/demo_embassy?before={last + 1}"


def test_pagination_backwards_reaches_the_first_post_without_loops(fake):
    channel = fake.channel("demo_embassy")
    seen: list[int] = []
    url = "/s/demo_embassy"
    visited = set()
    while url:
        assert url not in visited, f"loop at {url}"
        visited.add(url)
        html = fake.client.get(url).text
        seen = ids_on(html) + seen
        before = more(html, "before")
        url = f"/s/demo_embassy?before={before}" if before else None
    assert seen == [p.id for p in channel.posts]
    assert seen[0] == 1


def test_pagination_forwards_with_after(fake):
    channel = fake.channel("demo_late_start")
    assert channel.posts[0].id == 5001  # a channel whose ids do not start at 1
    seen: list[int] = []
    after = 5000
    for _ in range(50):
        html = fake.client.get(f"/s/demo_late_start?after={after}").text
        seen += ids_on(html)
        after = more(html, "after")
        if after is None:
            break
    assert seen == [p.id for p in channel.posts]


def test_ids_have_gaps_and_albums_span_several_ids(fake):
    posts = fake.channel("demo_embassy").posts
    ids = [p.id for p in posts]
    occupied = {i for p in posts for i in (p.album_ids or [p.id])}
    assert len(occupied) < ids[-1] - ids[0] + 1  # deleted ids
    album = next(p for p in posts if len(p.album_ids) > 1)
    html = fake.client.get(f"/s/demo_embassy?before={album.album_ids[-1] + 1}").text
    for item in album.album_ids:
        assert f"/demo_embassy/{item}?single" in html
    assert 'tgme_widget_message_grouped_wrap' in html


def test_newest_page_shows_every_kind(fake):
    html = fake.client.get("/s/demo_embassy").text
    for marker in ("tgme_widget_message_photo_wrap", "tgme_widget_message_video_player",
                   "tgme_widget_message_roundvideo_player", "tgme_widget_message_voice_player",
                   "tgme_widget_message_document_icon accent_bg audio", "tgme_widget_message_sticker_wrap",
                   "tgme_widget_message_poll", "tgme_widget_message_location_wrap",
                   "tgme_widget_message_contact_wrap", "service_message", "tgme_widget_message_grouped_wrap"):
        assert marker in html, marker


def test_channel_without_preview_redirects_to_contact_page(fake):
    r = fake.client.get("/s/demo_closed")
    assert r.status_code == 302
    assert r.headers["location"] == "/demo_closed"
    page = fake.client.get("/s/demo_closed", follow_redirects=True)
    assert page.status_code == 200
    assert str(page.url).endswith("/demo_closed")
    assert "tgme_channel_history" not in page.text and "tgme_page_title" in page.text
    assert "Preview channel" not in page.text


def test_unknown_channel_redirects_too(fake):
    r = fake.client.get("/s/no_such_channel", follow_redirects=True)
    assert [h.status_code for h in r.history] == [302]
    assert "tgme_widget_message" not in r.text
    assert "Contact @no_such_channel" in r.text


def test_contact_page_of_public_channel_offers_preview(fake):
    r = fake.client.get("/demo_embassy")
    assert r.status_code == 200 and 'href="/s/demo_embassy"' in r.text


def test_embed_page_and_missing_post(fake):
    post = fake.channel("demo_embassy").posts[10]
    r = fake.client.get(f"/demo_embassy/{post.id}?embed=1")
    assert r.status_code == 200
    assert "body_widget_post" in r.text and f'data-post="demo_embassy/{post.id}"' in r.text
    missing = fake.client.get("/demo_embassy/999999?embed=1")
    assert "Post not found" in missing.text and "data-post" not in missing.text


def test_request_log_counts_requests(fake):
    fake.client.get("/s/demo_embassy")
    fake.client.get("/s/demo_embassy?before=100")
    fake.client.get("/_fake/log")
    assert fake.requests == ["/s/demo_embassy", "/s/demo_embassy?before=100"]


# ---------------------------------------------------------------- scripted changes


def test_scripted_changes_show_on_the_next_crawl(fake):
    before = fake.client.get("/s/demo_embassy").text
    channel = fake.channel("demo_embassy")
    old_newest = channel.posts[-1].id
    target = next(p for p in reversed(channel.posts) if p.kind == "message" and p.views)
    views_before = target.views
    added = fake.add_posts("demo_embassy", 3, kinds=["text"])
    fake.edit_post("demo_embassy", target.id, "Corrected: the reception starts at 19:00.")
    victim = channel.posts[-6]
    fake.delete_post("demo_embassy", victim.id)
    fake.grow_views("demo_embassy", 2.0)
    fake.set_counter("demo_embassy", "subscribers", 20_000)
    after = fake.client.get("/s/demo_embassy").text
    assert after != before
    shown = ids_on(after)
    assert [p.id for p in added] == shown[-3:] and added[0].id > old_newest
    assert victim.id not in shown
    assert "Corrected: the reception starts at 19:00." in after
    assert target.views == views_before * 2
    assert '<span class="counter_value">20K</span> <span class="counter_type">subscribers</span>' in after


def test_admin_advance_applies_a_batch(fake):
    r = fake.client.post("/_fake/advance", json={"channel": "demo_mfa", "new_posts": 2})
    assert r.status_code == 200
    report = r.json()["demo_mfa"]
    assert len(report["added"]) == 2 and len(report["edited"]) == 1 and len(report["deleted"]) == 1
    html = fake.client.get("/s/demo_mfa").text
    assert ids_on(html)[-2:] == report["added"]
    assert fake.client.post("/_fake/advance", json={"bogus": 1}).status_code == 400


def test_admin_fault_and_clear(fake):
    r = fake.client.post("/_fake/fault", json={"kind": "rate_limit", "times": 1, "retry_after": 7})
    assert r.status_code == 200
    assert fake.client.get("/s/demo_embassy").status_code == 429
    fake.client.post("/_fake/fault", json={"kind": "status", "times": None, "status": 500})
    fake.client.post("/_fake/clear")
    assert fake.client.get("/s/demo_embassy").status_code == 200
    assert fake.client.get("/_fake/log").json()["requests"] == ["/s/demo_embassy"]
    assert fake.client.post("/_fake/fault", json={"kind": "meteor"}).status_code == 400


# ---------------------------------------------------------------- faults


def test_rate_limit_for_next_n_requests(fake):
    fake.rate_limit(times=2, retry_after=3)
    statuses = [fake.client.get("/s/demo_embassy") for _ in range(3)]
    assert [r.status_code for r in statuses] == [429, 429, 200]
    assert statuses[0].headers["retry-after"] == "3"


def test_server_errors_then_recovery(fake):
    fake.server_error(times=1, status=502)
    fake.server_error(times=1, status=503)  # queued: one fault of a kind per request
    assert [fake.client.get("/s/demo_embassy").status_code for _ in range(3)] == [502, 503, 200]


def test_fault_targeted_by_path(fake):
    fake.server_error(times=None, path=r"before=1\d\d\b")
    assert fake.client.get("/s/demo_embassy").status_code == 200
    assert fake.client.get("/s/demo_embassy?before=150").status_code == 503
    assert fake.client.get("/s/demo_embassy?before=150").status_code == 503
    assert fake.client.get("/s/demo_embassy?before=90").status_code == 200
    fake.clear_faults()
    assert fake.client.get("/s/demo_embassy?before=150").status_code == 200


def test_slow_response_trips_client_timeout(fake):
    fake.slow(1.0, times=1)
    with pytest.raises(httpx.ReadTimeout):
        fake.client.get("/s/demo_embassy", timeout=0.2)
    start = time.monotonic()
    assert fake.client.get("/s/demo_embassy").status_code == 200
    assert time.monotonic() - start < 1.0


def test_truncated_transfer_with_full_content_length(fake):
    fake.truncate(times=1, keep=0.4)
    with pytest.raises(httpx.RemoteProtocolError):
        fake.client.get("/s/demo_embassy")
    assert fake.client.get("/s/demo_embassy").text.rstrip().endswith("-->")


def test_truncated_page_with_matching_content_length(fake):
    fake.truncate(times=1, keep=0.5, lie_length=False)
    r = fake.client.get("/s/demo_embassy")
    assert r.status_code == 200
    assert "</html>" not in r.text
    assert int(r.headers["content-length"]) == len(r.content)


def test_page_without_more_link_keeps_head_links(fake):
    fake.drop_more_link(times=1)
    html = fake.client.get("/s/demo_embassy?before=150").text
    assert "js-messages_more" not in html
    assert head_link(html, "prev") is not None
    assert "js-messages_more" in fake.client.get("/s/demo_embassy?before=150").text


def test_changed_layout_has_content_but_no_known_classes(fake):
    fake.change_layout(times=1)
    html = fake.client.get("/s/demo_embassy").text
    assert "tgme_widget_message" not in html and "tgme_channel_info" in html
    assert "tgme_post_card_text" in html


def test_non_telegram_html(fake):
    fake.not_telegram(times=1, path="/s/")
    html = fake.client.get("/s/demo_embassy").text
    assert "tgme_" not in html and "<html>" in html


def test_concurrent_requests(fake):
    results = []

    def fetch(n):
        with httpx.Client(base_url=fake.base_url) as client:
            results.append(client.get(f"/s/demo_embassy?before={300 - n}").status_code)

    threads = [threading.Thread(target=fetch, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 8


# ---------------------------------------------------------------- generator and CLI


def test_generator_is_deterministic_and_varied():
    a = generate_channel("x_demo", 400, seed=5)
    b = generate_channel("x_demo", 400, seed=5)
    assert a == b
    texts = [p.text for p in a[1] if p.text]
    assert len(set(texts)) > 0.9 * len(texts)
    kinds = {p.content_kind for p in a[1]}
    assert {"text", "album", "service"} <= kinds
    assert set(KIND_WEIGHTS) - {"text", "album", "service"} <= kinds
    assert any(re.search("[а-я]", t) for t in texts) and any(re.search("[æøå]", t) for t in texts)


def test_channel_can_start_late():
    fake = FakeChannel.demo("late_one", 30, first_id=777)
    assert fake.posts[0].id == 777 and fake.posts[0].kind == "message"


def test_cli_rejects_bad_channel_spec():
    result = CliRunner().invoke(cli, ["--channel", "nonsense"])
    assert result.exit_code != 0 and "NAME:POSTS" in result.output


def test_status_fault_answers_404_on_an_older_page_only(fake):
    fake.status(404, times=None, path=r"before=")
    assert fake.client.get("/s/demo_embassy").status_code == 200
    r = fake.client.get("/s/demo_embassy?before=150")
    assert r.status_code == 404 and "404 Not Found" in r.text


def test_drip_feed_sends_one_byte_at_a_time(fake):
    fake.drip(seconds=0.05, times=1)
    with fake.client.stream("GET", "/s/demo_embassy", timeout=2) as r:
        assert r.status_code == 200 and int(r.headers["content-length"]) > 10_000
        chunks = []
        for chunk in r.iter_raw():
            chunks.append(chunk)
            if len(chunks) == 3:
                break
    assert chunks == [b"<", b"!", b"D"]  # each read gets one byte: no read ever times out
    assert fake.client.get("/s/demo_embassy").text.rstrip().endswith("-->")  # used up


def test_endless_body_never_ends(fake):
    fake.endless(times=1, chunk=65536)
    received = 0
    with fake.client.stream("GET", "/s/demo_embassy") as r:
        assert r.headers["transfer-encoding"] == "chunked" and "content-length" not in r.headers
        for chunk in r.iter_raw():
            received += len(chunk)
            if received > 3_000_000:
                break
    assert received > 3_000_000  # far more than any page, and still going
    assert fake.client.get("/s/demo_embassy").status_code == 200


@pytest.mark.parametrize("depth, tag", [(50_000, "b"), (200_000, "div")])
def test_deep_nesting_serves_a_message_text_nested_deep(fake, depth, tag):
    fake.deep_nesting(depth=depth, tag=tag, path=r"before=")
    html = fake.client.get("/s/demo_embassy?before=150").text
    text = 'class="tgme_widget_message_text js-message_text" dir="auto">'
    start = html.index(text) + len(text)
    assert html[start:start + depth * len(f"<{tag}>") + 4] == f"<{tag}>" * depth + "deep"
    assert html.count(f"</{tag}>") >= depth and html.rstrip().endswith("-->")
    assert "<b><b>" not in fake.client.get("/s/demo_embassy?before=150").text  # used up


def test_admin_injects_the_hostile_faults(fake):
    for body in ({"kind": "drip", "seconds": 0.01}, {"kind": "endless", "chunk": 1024},
                 {"kind": "deep_nesting", "depth": 1000, "tag": "div"}, {"kind": "status", "status": 404}):
        assert fake.client.post("/_fake/fault", json=body).status_code == 200
    kinds = [f.kind for f in fake.faults]
    assert kinds == ["drip", "endless", "deep_nesting", "status"]
    assert fake.faults[2].depth == 1000 and fake.faults[0].seconds == 0.01
