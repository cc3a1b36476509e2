"""Places: precision on a labelled set, the ambiguity rules, location messages, and the
incremental derive step on a real database."""

import dataclasses
from collections import Counter
from pathlib import Path

import pytest
import yaml

from telegram_datasette.model import Media, Page, Post
from telegram_datasette.derive import derive
from telegram_datasette.places import find_mentions
from telegram_datasette.schema import open_db
from telegram_datasette.store import save_page

LABELLED = Path(__file__).with_name("places_labelled.yml")


def score(items):
    true_positive = false_positive = gold_total = 0
    for item in items:
        gold = Counter((p["text"], p["name"]) for p in item["places"])
        gold_total += sum(gold.values())
        for mention in find_mentions(item["text"]):
            key = (mention.matched_text, mention.place.name)
            if gold[key] > 0:
                gold[key] -= 1
                true_positive += 1
            else:
                false_positive += 1
    return true_positive, false_positive, gold_total


def test_labelled_set_is_big_enough_and_bilingual():
    items = yaml.safe_load(LABELLED.read_text())
    per_language = Counter()
    for item in items:
        per_language[item["lang"]] += len(item["places"])
    assert sum(per_language.values()) >= 50
    assert per_language["ru"] >= 20 and per_language["en"] >= 20


@pytest.mark.parametrize("lang", ["ru", "en", "all"])
def test_precision_at_least_0_9(lang):
    items = [i for i in yaml.safe_load(LABELLED.read_text()) if lang in ("all", i["lang"])]
    true_positive, false_positive, gold_total = score(items)
    precision = true_positive / (true_positive + false_positive)
    recall = true_positive / gold_total
    print(f"{lang}: precision {precision:.3f}, recall {recall:.3f} ({gold_total} labelled mentions)")
    assert precision >= 0.9
    assert recall >= 0.6  # not the target, but a matcher that finds nothing is no use


def names(text):
    return [(m.matched_text, m.place.name, m.place.country_code) for m in find_mentions(text)]


def test_russian_word_forms_are_lemmatised():
    assert names("Встреча в Норвегии") == [("Норвегии", "Norway", "NO")]
    assert names("Из Соединённых Штатов Америки в Нижний Новгород")[0][1:] == ("United States", "US")


def test_person_named_like_a_city_is_not_a_place():
    assert names("Владимир Путин провёл совещание") == []
    assert names("Vladimir Putin met Lincoln students") == []


def test_longer_proper_names_and_common_words_are_skipped():
    assert names("Moscow State University and the Oslo Freedom Forum") == []
    assert names("Time and Nice weather") == []


def test_country_wins_and_biggest_city_wins_unless_qualified():
    assert names("Georgia")[0][1:] == ("Georgia", "GE")
    assert names("Paris is big")[0][2] == "FR"
    assert names("London, Canada")[0][2] == "CA"


def post(i, text, **kw):
    return Post(channel="PlaceChan", id=i, url=f"https://t.me/PlaceChan/{i}", date="2026-01-01T00:00:00+00:00",
                text=text, html=text, **kw)


def test_extract_places_incremental_with_locations(tmp_path):
    db = open_db(tmp_path / "telegram.db")
    posts = [
        post(1, "Встреча в Осло"),
        post(2, "Nothing here"),
        post(3, "Pin", media=[Media(0, "location", title="Harbour", latitude=69.73, longitude=30.05)]),
    ]
    save_page(db, Page(channel=None, posts=posts), "2026-01-01T00:00:00.000+00:00")
    assert derive(db) == 3
    rows = list(db.query("select post_id, name, matched_text, country_code, latitude, longitude, kind, popup from places order by post_id"))
    assert [(r["post_id"], r["name"], r["kind"]) for r in rows] == [(1, "Oslo", "city"), (3, "Harbour", "location")]
    assert rows[0]["matched_text"] == "Осло" and rows[0]["country_code"] == "NO"
    assert round(rows[0]["latitude"]) == 60 and round(rows[0]["longitude"]) == 11
    assert (rows[1]["latitude"], rows[1]["longitude"]) == (69.73, 30.05)
    assert '"link": "posts/PlaceChan~2F1"' in rows[0]["popup"]
    # nothing changed: nothing rescanned
    assert derive(db) == 0
    # an edit is rescanned, and its old places go
    save_page(db, Page(channel=None, posts=[dataclasses.replace(posts[0], text="Встреча в Бергене")]),
              "2026-01-02T00:00:00.000+00:00")
    assert derive(db) == 1
    assert [r["name"] for r in db.query("select name from places where post_id = 1")] == ["Bergen"]


def test_real_captures_give_places_with_coordinates(real_pages, tmp_path):
    from telegram_datasette.build import import_pages

    db_path = tmp_path / "telegram.db"
    import_pages([real_pages], db_path, tmp_path / "archive.db")
    db = open_db(db_path)
    rows = list(db.query("select * from places"))
    assert len(rows) >= 20
    assert all(-90 <= r["latitude"] <= 90 and -180 <= r["longitude"] <= 180 for r in rows)
    assert {"location", "country", "city"} <= {r["kind"] for r in rows}


def test_batched_ner_gives_the_same_spans_as_one_text_at_a_time():
    from telegram_datasette import places
    from devtools.demo import generate_channel

    _, posts = generate_channel("batch_check", 200, seed=2)
    texts = [p.text for p in posts if p.text and places.is_cyrillic(p.text)]
    assert len(texts) > 20
    one_at_a_time = [places.ner_spans(t) for t in texts]
    places.prefetch_ner(texts)
    assert [places.ner_spans(t) for t in texts] == one_at_a_time
