"""channels.yml checking and channel-name normalisation: every mistake is one clear line."""

from pathlib import Path

import pytest

from telegram_datasette.config import DEFAULTS, ConfigError, channel_name, channel_names, load_config

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str, name: str = "channels.yml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert path.name in message
    return message


# --- channel names ---

@pytest.mark.parametrize("value", [
    "demo_mfa", "@demo_mfa", "t.me/demo_mfa", "https://t.me/demo_mfa", "http://t.me/demo_mfa",
    "https://t.me/s/demo_mfa", "t.me/s/demo_mfa", "https://t.me/demo_mfa/123",
    "https://t.me/s/demo_mfa?before=10", "https://telegram.me/demo_mfa", "www.t.me/demo_mfa",
    "https://www.t.me/s/demo_mfa/", "t.me/demo_mfa/", "  @demo_mfa  ", "HTTPS://T.ME/demo_mfa",
    "https://t.me/s/demo_mfa/42?single#frag",
])
def test_channel_name_forms(value):
    assert channel_name(value) == "demo_mfa"


def test_channel_name_keeps_case():
    assert channel_name("https://t.me/s/RusEmbNo") == "RusEmbNo"
    assert channel_name("abc") == "abc"
    assert channel_name("a" * 32) == "a" * 32


@pytest.mark.parametrize("value", [
    "", "   ", "@", "@@x", "t.me/+AbCd", "https://t.me/+AbCd", "t.me/joinchat/AbCd",
    "https://t.me/joinchat/AbCd", "t.me/c/123/45", "https://t.me/c/1234567/45",
    "https://example.com/demo_mfa", "example.com/demo_mfa", "https://t.me.evil.com/demo_mfa",
    "demo mfa", "demo-mfa", "demo.mfa", "demo_mfa!", "1234567", "-1001234567", "_demo",
    "ab", "a" * 33, "t.me", "https://t.me/", "https://t.me/s/", "t.me/demo_mfa/abc",
])
def test_channel_name_rejects(value):
    with pytest.raises(ValueError) as info:
        channel_name(value)
    message = str(info.value)
    assert repr(value) in message
    assert "3 to 32 letters, digits or underscores starting with a letter" in message
    assert "invite and private links cannot be crawled" in message


def test_channel_names_option():
    assert channel_names(["@demo_mfa", "https://t.me/s/Other", "DEMO_MFA", "other"]) == ["demo_mfa", "Other"]
    assert channel_names([]) == []


def test_channel_names_option_error():
    with pytest.raises(ConfigError) as info:
        channel_names(["demo_mfa", "@@x"])
    message = str(info.value)
    assert message.startswith("--channel '@@x'")
    assert "starting with a letter" in message and "\n" not in message


# --- loading ---

def test_repository_channels_yml_loads():
    config = load_config(ROOT / "channels.yml")
    assert set(config) == set(DEFAULTS)
    assert config["channels"] and all(isinstance(c, str) for c in config["channels"])


def test_none_gives_defaults_copy():
    config = load_config(None)
    assert config == DEFAULTS
    config["channels"].append("other")
    assert DEFAULTS["channels"] == ["RusEmbNo"]


def test_defaults_filled_and_types(tmp_path):
    config = load_config(write(tmp_path, "channels: ['@demo_mfa', 'https://t.me/s/Other']\nrefresh_days: 2\n"))
    assert config == {**DEFAULTS, "channels": ["demo_mfa", "Other"], "refresh_days": 2}
    for key in ("requests_per_second", "refresh_days", "timeout_seconds", "request_deadline_seconds"):
        assert type(config[key]) is float
    for key in ("max_retries", "max_page_bytes"):
        assert type(config[key]) is int


def test_accepted_values(tmp_path):
    config = load_config(write(tmp_path, (
        "channels: [demo_mfa]\nbase_url: http://127.0.0.1:8080\nrequests_per_second: 0\n"
        "refresh_days: 0.5\ntimeout_seconds: 2.5\nmax_retries: 0\n"
        "request_deadline_seconds: 0.5\nmax_page_bytes: 1000\n"
    )))
    assert config == {"channels": ["demo_mfa"], "base_url": "http://127.0.0.1:8080", "requests_per_second": 0.0,
                      "refresh_days": 0.5, "timeout_seconds": 2.5, "max_retries": 0,
                      "request_deadline_seconds": 0.5, "max_page_bytes": 1000,
                      **{k: v for k, v in DEFAULTS.items() if k.startswith(("media_", "follow_"))}}


def test_following_forwards_settings(tmp_path):
    config = load_config(write(tmp_path, (
        "channels: [demo_mfa, demo_embassy]\nfollow_forwards: off\nfollow_requests_per_run: 0\n"
        "follow_forwards_by_channel:\n  demo_embassy: channels\n")))
    assert (config["follow_forwards"], config["follow_requests_per_run"]) == ("off", 0)
    assert config["follow_forwards_by_channel"] == {"demo_embassy": "channels"}
    assert load_config(None)["follow_forwards"] == "originals"
    for bad, message in (("follow_forwards: all\n", "follow_forwards: expected one of off, originals, channels"),
                         ("follow_requests_per_run: -1\n", "follow_requests_per_run: expected a whole number >= 0"),
                         ("follow_forwards_by_channel:\n  demo_embassy: everything\n",
                          "follow_forwards_by_channel: expected a mapping of channel name to off, originals or channels")):
        assert message in config_error(write(tmp_path, "channels: [demo_mfa]\n" + bad)), bad


def test_hostile_server_limits_default_to_a_minute_and_5_mb():
    config = load_config(None)
    assert config["request_deadline_seconds"] == 60.0
    assert config["max_page_bytes"] == 5_000_000
    repository = load_config(ROOT / "channels.yml")
    assert repository["request_deadline_seconds"] == 60.0 and repository["max_page_bytes"] == 5_000_000


def test_missing_file(tmp_path):
    message = config_error(tmp_path / "missing.yml")
    assert message.endswith("missing.yml: no such file (pass --config with the path of your channels.yml, "
                            "or --channel NAME)")


@pytest.mark.parametrize("text, key, expected", [
    ("requests_per_second: fast\n", "requests_per_second", "expected a number >= 0 (0 means no limit), got 'fast'"),
    ("requests_per_second: -1\n", "requests_per_second", "expected a number >= 0"),
    ("requests_per_second: yes\n", "requests_per_second", "got True"),
    ("refresh_days: -0.5\n", "refresh_days", "expected a number >= 0, got -0.5"),
    ("refresh_days: true\n", "refresh_days", "got True"),
    ("refresh_days: .nan\n", "refresh_days", "expected a number >= 0"),
    ("refresh_days:\n", "refresh_days", "got nothing"),
    ("timeout_seconds: 0\n", "timeout_seconds", "expected a number > 0, got 0"),
    ("timeout_seconds: '30'\n", "timeout_seconds", "got '30'"),
    ("max_retries: 2.5\n", "max_retries", "expected a whole number >= 0, got 2.5"),
    ("max_retries: -1\n", "max_retries", "got -1"),
    ("max_retries: no\n", "max_retries", "got False"),
    ("request_deadline_seconds: 0\n", "request_deadline_seconds", "expected a number > 0, got 0"),
    ("request_deadline_seconds: -5\n", "request_deadline_seconds", "got -5"),
    ("request_deadline_seconds: .inf\n", "request_deadline_seconds", "expected a number > 0"),
    ("request_deadline_seconds: '60'\n", "request_deadline_seconds", "got '60'"),
    ("request_deadline_seconds: yes\n", "request_deadline_seconds", "got True"),
    ("max_page_bytes: 0\n", "max_page_bytes", "expected a whole number > 0, got 0"),
    ("max_page_bytes: 5e6\n", "max_page_bytes", "got '5e6'"),
    ("max_page_bytes: 5000000.0\n", "max_page_bytes", "got 5000000.0"),
    ("max_page_bytes: 5MB\n", "max_page_bytes", "got '5MB'"),
    ("max_page_bytes:\n", "max_page_bytes", "got nothing"),
    ("base_url: t.me\n", "base_url", "expected a URL starting with http:// or https://, got 't.me'"),
    ("base_url: ftp://t.me\n", "base_url", "http:// or https://"),
    ("base_url: 'https://'\n", "base_url", "http:// or https://"),
    ("base_url: 443\n", "base_url", "got 443"),
    ("channels: {demo_mfa: 1}\n", "channels", "expected a list of channel names, got {'demo_mfa': 1}"),
    ("channels: 12\n", "channels", "expected a list of channel names, got 12"),
])
def test_bad_values(tmp_path, text, key, expected):
    message = config_error(write(tmp_path, text))
    assert f"channels.yml: {key}: " in message
    assert expected in message


def test_channels_as_string(tmp_path):
    message = config_error(write(tmp_path, "channels: demo_mfa\n"))
    assert message.endswith("channels.yml: channels: expected a list of channel names, got a string "
                            "('demo_mfa'); write it as a list: channels: [demo_mfa]")


def test_channels_empty(tmp_path):
    message = config_error(write(tmp_path, "channels: []\n"))
    assert message.endswith("channels.yml: channels: the list is empty; name at least one channel")


@pytest.mark.parametrize("entry, expected", [
    ("'t.me/+AbCd'", "'t.me/+AbCd' is not a public channel name: expected NAME"),
    ("t.me/c/123/45", "'t.me/c/123/45' is not a public channel name"),
    ("demo mfa", "'demo mfa' is not a public channel name"),
    ("12345", "expected a channel name, got 12345"),
    ("", "expected a channel name, got nothing"),
    ("[a, b]", "expected a channel name, got ['a', 'b']"),
])
def test_bad_channel_entry_names_position(tmp_path, entry, expected):
    message = config_error(write(tmp_path, f"channels:\n  - one_channel\n  - two_channel\n  - {entry}\n"))
    assert "channels.yml: channels[2]: " in message
    assert expected in message


def test_duplicate_channels(tmp_path):
    message = config_error(write(tmp_path, "channels: [RusEmbNo, other_one, 'https://t.me/s/rusembno']\n"))
    assert "channels.yml: channels[2]: " in message
    assert "repeats channels[0] ('RusEmbNo')" in message


def test_unknown_key_suggests(tmp_path):
    message = config_error(write(tmp_path, "channels: [demo_mfa]\nrefresh_day: 3\n"))
    assert "channels.yml: unknown key 'refresh_day' (did you mean 'refresh_days'?); allowed keys: " in message
    assert "max_retries" in message


def test_unknown_key_without_suggestion(tmp_path):
    message = config_error(write(tmp_path, "colour: blue\n"))
    assert "unknown key 'colour'; allowed keys: channels, base_url" in message


@pytest.mark.parametrize("text, expected", [
    ("channels: [demo_mfa\nrefresh_days: 3\n", "not valid YAML"),
    ("channels:\n  - a\n bad: [\n", "line "),
    ("refresh_days: 3\n\tmax_retries: 2\n", "line 2"),
])
def test_yaml_syntax_error(tmp_path, text, expected):
    message = config_error(write(tmp_path, text))
    assert "not valid YAML" in message and expected in message


@pytest.mark.parametrize("text, expected", [
    ("- demo_mfa\n- other\n", "got a list"),
    ("demo_mfa\n", "got a single value"),
])
def test_top_level_not_a_mapping(tmp_path, text, expected):
    message = config_error(write(tmp_path, text))
    assert "channels.yml: expected settings as 'key: value' lines at the top level" in message
    assert expected in message


@pytest.mark.parametrize("text", ["", "# only a comment\n", "\n\n"])
def test_empty_file(tmp_path, text):
    message = config_error(write(tmp_path, text))
    assert "channels.yml: the file is empty" in message


def test_not_utf8(tmp_path):
    path = tmp_path / "channels.yml"
    path.write_bytes(b"channels: [caf\xe9]\n")
    assert "not UTF-8" in config_error(path)
