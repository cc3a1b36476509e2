"""plugins/static_metadata.py: remembered permission answers stay the right answers."""

import pytest
import sqlite_utils
from datasette.app import Datasette


@pytest.mark.asyncio
async def test_denied_table_stays_denied_and_open_table_stays_open(tmp_path):
    path = tmp_path / "telegram.db"
    db = sqlite_utils.Database(path)
    db["posts"].insert({"id": 1, "text": "open"}, pk="id")
    db["secret"].insert({"id": 1, "text": "closed"}, pk="id")
    metadata = {"databases": {"telegram": {"tables": {"secret": {"allow": {"id": "admin"}}}}}}
    ds = Datasette([], immutables=[str(path)], metadata=metadata)
    await ds.invoke_startup()
    for _ in range(3):  # the second and third answers come from the remembered lookup
        assert (await ds.client.get("/telegram/posts.json")).status_code == 200
        assert (await ds.client.get("/telegram/secret.json")).status_code == 403
    admin = ds.sign({"a": {"id": "admin"}}, "actor")
    response = await ds.client.get("/telegram/secret.json", cookies={"ds_actor": admin})
    assert response.status_code == 200
