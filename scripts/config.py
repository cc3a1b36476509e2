"""Read and check channels.yml, and normalise channel names.

Every mistake is reported as one line naming the file and the key, so that a
typo in the config stops the build with a message the user can act on, instead
of a traceback from deep inside the crawl.
"""

from __future__ import annotations

import difflib
import math
import re
from pathlib import Path

import yaml

DEFAULTS = {
    "channels": ["RusEmbNo"],
    "base_url": "https://t.me",
    "requests_per_second": 1.0,
    "refresh_days": 7,
    "timeout_seconds": 30,
    "max_retries": 5,
    "request_deadline_seconds": 60,
    "max_page_bytes": 5_000_000,
    # Following forwards (scripts/follow.py): off, originals or channels, for every
    # channel or per channel; at most this many requests per run for originals.
    "follow_forwards": "originals",
    "follow_forwards_by_channel": {},
    "follow_requests_per_run": 200,
    # The media store (scripts/media.py): images by default, video and audio files only
    # when asked for; files over the cap are "too big"; past the budget the rest of a run's
    # files wait for the next run.
    "media_images": True,
    "media_video_and_audio": False,
    "media_max_file_bytes": 20_000_000,
    "media_budget_bytes": 500_000_000,
    "media_requests_per_second": 2.0,
}


FOLLOW_MODES = ("off", "originals", "channels")


def _follow_mode(value):
    # YAML 1.1 reads an unquoted `off` as false.
    return "off" if value is False else value


def _number(value) -> bool:
    # bool is a subclass of int, and YAML reads `yes`/`no`/`on` as booleans.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# name -> (type the value is returned as, rule shown in errors, check of the raw YAML value).
# The list of channels is checked entry by entry in _channels(), so its check is only the shape.
KEYS = {
    "channels": (list, "a list of channel names", lambda v: isinstance(v, list)),
    "base_url": (str, "a URL starting with http:// or https://",
                 lambda v: isinstance(v, str) and re.fullmatch(r"https?://[^\s/]\S*", v, re.I) is not None),
    "requests_per_second": (float, "a number >= 0 (0 means no limit)", lambda v: _number(v) and v >= 0),
    "refresh_days": (float, "a number >= 0", lambda v: _number(v) and v >= 0),
    "timeout_seconds": (float, "a number > 0", lambda v: _number(v) and v > 0),
    "max_retries": (int, "a whole number >= 0",
                    lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0),
    "request_deadline_seconds": (float, "a number > 0", lambda v: _number(v) and v > 0),
    "max_page_bytes": (int, "a whole number > 0",
                       lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0),
    "follow_forwards": (_follow_mode, "one of off, originals, channels", lambda v: _follow_mode(v) in FOLLOW_MODES),
    "follow_forwards_by_channel": (lambda v: {k: _follow_mode(m) for k, m in v.items()},
                                   "a mapping of channel name to off, originals or channels",
                                   lambda v: isinstance(v, dict) and all(
                                       isinstance(k, str) and _NAME.fullmatch(k) and _follow_mode(m) in FOLLOW_MODES
                                       for k, m in v.items())),
    "follow_requests_per_run": (int, "a whole number >= 0",
                                lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0),
    "media_images": (bool, "true or false", lambda v: isinstance(v, bool)),
    "media_video_and_audio": (bool, "true or false", lambda v: isinstance(v, bool)),
    "media_max_file_bytes": (int, "a whole number > 0",
                             lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0),
    "media_budget_bytes": (int, "a whole number >= 0 (0: download nothing this run)",
                           lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0),
    "media_requests_per_second": (float, "a number >= 0 (0 means no limit)", lambda v: _number(v) and v >= 0),
}

NAME_RULE = (
    "expected NAME, @NAME, t.me/NAME or https://t.me/s/NAME, where NAME is 3 to 32 letters, "
    "digits or underscores starting with a letter (invite and private links cannot be crawled)"
)
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{2,31}")
# t.me/NAME, t.me/s/NAME, a post link t.me/NAME/123, with any scheme, www., query or fragment.
_LINK = re.compile(r"(?:https?://)?(?:www\.)?(?:t|telegram)\.me/(?:s/)?([^/?#]*)(?:/\d+)?/*(?:[?#].*)?", re.I)
# t.me paths that look like names but are Telegram's own pages, not channels.
_SERVICE_PATHS = {"joinchat", "addstickers", "addemoji", "addlist", "share", "proxy", "socks", "iv"}


class ConfigError(Exception):
    """A mistake in the configuration; str() is one line naming the file (or option) and key."""

    def __init__(self, message: str):
        super().__init__(re.sub(r"\s*\n\s*", " ", str(message)).strip())


def channel_name(value: str) -> str:
    """The username in a channel reference (name, @name or a t.me link), case kept as written."""
    text = value.strip() if isinstance(value, str) else ""
    link = _LINK.fullmatch(text)
    name = link.group(1) if link else text.removeprefix("@")
    if not _NAME.fullmatch(name) or name.lower() in _SERVICE_PATHS:
        raise ValueError(f"{value!r} is not a public channel name: {NAME_RULE}")
    return name


def channel_names(values: list[str]) -> list[str]:
    """Names given with --channel, normalised; repeats are dropped, keeping the first."""
    names: dict[str, str] = {}
    for value in values:
        try:
            name = channel_name(value)
        except ValueError:
            raise ConfigError(f"--channel {value!r} is not a public channel name: {NAME_RULE}") from None
        names.setdefault(name.lower(), name)
    return list(names.values())


def load_config(path: Path | None) -> dict:
    """The checked configuration from `path`, defaults filled in; None gives the defaults."""
    if path is None:
        return _checked("defaults", DEFAULTS)
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such file (pass --config with the path of your channels.yml, "
                          "or --channel NAME)") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not UTF-8 text; save it as UTF-8") from None
    except OSError as e:
        raise ConfigError(f"{where}: cannot be read ({e.strerror or e})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: {_yaml_problem(e)}") from None
    if data is None:
        raise ConfigError(f"{where}: the file is empty; it needs at least a list of channels, "
                          "e.g. channels: [RusEmbNo]")
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected settings as 'key: value' lines at the top level, "
                          f"got {_kind(data)}")
    for key in data:
        if key not in KEYS:
            close = difflib.get_close_matches(str(key), list(KEYS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}: unknown key {key!r}{hint}; allowed keys: {', '.join(KEYS)}")
    return _checked(where, {**DEFAULTS, **data})


def _checked(where: str, raw: dict) -> dict:
    config = {}
    for key, (kind, rule, check) in KEYS.items():
        value = raw[key]
        if isinstance(value, str) and key == "channels":
            raise ConfigError(f"{where}: channels: expected a list of channel names, got a string "
                              f"({value!r}); write it as a list: channels: [{value.strip()}]")
        if not check(value):
            raise ConfigError(f"{where}: {key}: expected {rule}, got {_shown(value)}")
        config[key] = _channels(where, value) if key == "channels" else kind(value)
    return config


def _channels(where: str, values: list) -> list[str]:
    if not values:
        raise ConfigError(f"{where}: channels: the list is empty; name at least one channel")
    seen: dict[str, int] = {}
    names = []
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise ConfigError(f"{where}: channels[{i}]: expected a channel name, got {_shown(value)}")
        try:
            name = channel_name(value)
        except ValueError as e:
            raise ConfigError(f"{where}: channels[{i}]: {e}") from None
        if name.lower() in seen:
            first = seen[name.lower()]
            raise ConfigError(f"{where}: channels[{i}]: {value!r} repeats channels[{first}] "
                              f"({values[first]!r}); list each channel once")
        seen[name.lower()] = i
        names.append(name)
    return names


def _yaml_problem(e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    problem = getattr(e, "problem", None) or str(e)
    at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    return f"{at}not valid YAML: {' '.join(problem.split())}"


def _kind(value) -> str:
    return {list: "a list", str: "a single value", int: "a single value", float: "a single value",
            bool: "a single value"}.get(type(value), type(value).__name__)


def _shown(value) -> str:
    # Empty `key:` in YAML is None; say so rather than print "None".
    if value is None:
        return "nothing (the value is empty)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
