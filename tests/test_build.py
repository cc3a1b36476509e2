"""The main job (`python -m scripts build`, what `make serve` runs)."""

import json

import sqlite_utils

from scripts.build import build_dataset


def write_config(tmp_path, base_url):
    config = tmp_path / "channels.yml"
    config.write_text(f"channels: [RusEmbNo]\nbase_url: {base_url}\nrequests_per_second: 0\n")
    return config


def test_unreachable_telegram_builds_the_demo_and_says_so(tmp_path, capsys):
    # Port 9 on loopback: nothing listens, so the connection is refused at once.
    config = write_config(tmp_path, "http://127.0.0.1:9")
    db_path, metadata = tmp_path / "telegram.db", tmp_path / "metadata.json"
    assert build_dataset(config, db_path, tmp_path / "archive.db", metadata) == 0
    out = capsys.readouterr().out
    assert "cannot be reached" in out and "demo dataset" in out
    assert json.loads(metadata.read_text())["title"].startswith("DEMO DATA")
    db = sqlite_utils.Database(db_path)
    channels = {r["username"] for r in db["channels"].rows}
    assert "demo_embassy" in channels and "demo_closed" not in channels
    kinds = {r["kind"] for r in db.query("select distinct kind from media")}
    assert {"photo", "video", "poll", "location", "sticker", "voice"} <= kinds


def test_real_data_is_never_mixed_with_the_demo(tmp_path, capsys):
    db_path = tmp_path / "telegram.db"
    db = sqlite_utils.Database(db_path)
    db["posts"].insert({"channel": "RusEmbNo", "id": 1, "text": "real"}, pk=("channel", "id"))
    config = write_config(tmp_path, "http://127.0.0.1:9")
    assert build_dataset(config, db_path, tmp_path / "archive.db", tmp_path / "metadata.json") == 0
    assert "serving the existing telegram.db" in capsys.readouterr().out
    assert [r["channel"] for r in sqlite_utils.Database(db_path)["posts"].rows] == ["RusEmbNo"]
    assert not json.loads((tmp_path / "metadata.json").read_text())["title"].startswith("DEMO")
