"""Shared test helpers. Keep this small: fixtures used by more than one test file."""

from pathlib import Path

import pytest

# Real Telegram captures live outside the repository (never copied in): ../shared.
SHARED = Path(__file__).resolve().parents[2] / "shared"
REAL_PAGES = SHARED / "telegram-pages" / "real"
FIXTURE_PAGES = Path(__file__).resolve().parent / "fixtures" / "pages"


@pytest.fixture
def real_pages() -> Path:
    if not REAL_PAGES.is_dir():
        pytest.skip(f"real t.me captures not available at {REAL_PAGES}")
    return REAL_PAGES
