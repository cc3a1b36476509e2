"""Development tools, not part of the installed package or the published site: the fake
Telegram server (`python -m devtools fake-telegram`), the generated demo channels, and the
renderer that writes their pages as t.me does."""
