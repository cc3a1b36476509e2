"""Turn public Telegram channels into a Datasette-published open dataset."""
