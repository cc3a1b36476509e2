"""The sharded scheduled update (.github/workflows/update.yml with SHARDS > 1), played
locally as tests/test_workflow.py plays the single job: the `plan` step, the `shard`
matrix (restore, crawl a shard, hand the files over: here a copy into a folder standing in
for the artifact store), then `update` (restore, merge, check, export, release, publish,
summary, and the step that fails the run when a shard failed), against the fake Telegram
serving 60 channels, with the release in a folder served by a stand-in `gh`."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from test_merge import CHANNELS, assert_same, dataset, fake_telegram, still_clock  # noqa: F401 - a fixture
from test_workflow import WORKFLOW, Runner, release_dir, rows
from telegram_datasette.merge import SHARD_FOLDER, in_shard
from telegram_datasette.workflow import public_tables

SHARDS = 4
SHARD_STEPS = ["restore", "crawl"]
UPDATE_STEPS = ["restore", "crawl", "check", "export", "release", "publish", "summary", "shards"]


def job_steps(job: str) -> dict[str, dict]:
    return {step["id"]: step for step in yaml.safe_load(WORKFLOW.read_text())["jobs"][job]["steps"] if "id" in step}


def play(runner: Runner, job: str, steps: list[str], replace: dict | None = None) -> str | None:
    """The job's `run:` steps in order, stopping at the first failure (a step with
    `if: always()`, the summary and the shard check, runs anyway). Returns the failed step."""
    defined, failed = job_steps(job), None
    for step_id in steps:
        if failed and "always()" not in str(defined[step_id].get("if", "")):
            continue
        script = (replace or {}).get(step_id, defined[step_id]["run"])
        result = subprocess.run(["bash", "-eo", "pipefail", "-c", script], cwd=runner.work, env=runner.env,
                                capture_output=True, text=True, timeout=300)
        runner.outputs[step_id] = result
        if result.returncode != 0 and failed is None:
            failed = step_id
    return failed


def runner(tmp: Path, url: str, name: str, **env: str) -> Runner:
    r = Runner(tmp, url, name)
    (r.work / "channels.yml").write_text(textwrap.dedent(f"""\
        channels: [{", ".join(CHANNELS)}]
        base_url: {url}
        requests_per_second: 0
        media_requests_per_second: 0
        refresh_days: 100000
        timeout_seconds: 10
        max_retries: 0
        follow_forwards: "off"
    """))
    r.env.update(SHARDS=str(SHARDS), SHARDS_DIR="shards", **env)
    return r


def scheduled_run(tmp: Path, url: str, name: str) -> tuple[Runner, dict[int, Runner], str | None]:
    """plan -> shard matrix (at once, as Actions runs it) -> update. Returns the update
    job's runner, the shards' runners and the step of `update` that failed."""
    plan = runner(tmp, url, f"{name}-plan")
    plan.env["GITHUB_OUTPUT"] = str(plan.work / "output")
    assert play(plan, "plan", ["plan"]) is None, plan.output("plan")
    outputs = dict(line.split("=", 1) for line in (plan.work / "output").read_text().splitlines())
    assert outputs == {"count": str(SHARDS), "shards": "[0, 1, 2, 3]"}

    shards = {i: runner(tmp, url, f"{name}-shard{i}", SHARD=str(i)) for i in range(SHARDS)}
    with ThreadPoolExecutor(SHARDS) as pool:
        failed = dict(zip(shards, pool.map(lambda r: play(r, "shard", SHARD_STEPS), shards.values())))
    artifacts = tmp / f"{name}-artifacts"
    for index, shard in shards.items():
        if failed[index] is None:  # upload-artifact runs only after a successful crawl
            shutil.copytree(shard.work / "data", artifacts / SHARD_FOLDER.format(index=index))

    update = runner(tmp, url, f"{name}-update", SHARD_JOBS="failure" if any(failed.values()) else "success")
    if artifacts.exists():  # download-artifact: a folder per artifact
        shutil.copytree(artifacts, update.work / "shards")
    return update, shards, play(update, "update", UPDATE_STEPS)


def per_channel(folder: Path, channels: set[str]) -> dict:
    """The rows of these channels in every public table that has a channel."""
    import sqlite3

    conn = sqlite3.connect(folder / "telegram.db")
    out = {}
    try:
        for table in public_tables(folder / "telegram.db"):
            names = [r[1] for r in conn.execute(f"pragma table_info([{table}])")]
            column = next((c for c in ("channel", "username") if c in names), None)
            if column and table != "fetches":
                marks = ",".join("?" * len(channels))
                out[table] = sorted(map(repr, conn.execute(f"select * from [{table}] where [{column}] in ({marks})",
                                                           sorted(channels))))
    finally:
        conn.close()
    return out


def test_the_matrix_merged_equals_one_crawl_and_a_failed_shard_keeps_its_channels(tmp_path, still_clock):  # noqa: F811
    fake = fake_telegram()
    with fake.serve() as url:
        (tmp_path / "single").mkdir()  # one crawl of all 60, meanwhile
        single = runner(tmp_path / "single", url, "one")
        crawl = subprocess.Popen(["bash", "-c", 'telegram-datasette crawl --config channels.yml --db one/telegram.db'],
                                 cwd=single.work, env=single.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        update, _, failed = scheduled_run(tmp_path, url, "run1")
        assert crawl.wait(timeout=300) == 0, crawl.stdout.read()
        assert failed is None, {k: v.stdout + v.stderr for k, v in update.outputs.items()}
        assert "::warning title=Fresh start::" in update.output("restore")
        assert f"merged {SHARDS} of {SHARDS} shards" in update.output("crawl")
        assert "check passed" in update.output("check")
        # The same rows as one crawl of all 60 channels, every public table whole.
        assert_same(dataset(single.work / "one"), dataset(update.work / "data"))
        release = release_dir(tmp_path)
        assert rows(release / "telegram.db", "select count(distinct channel) from posts") == {(60,)}
        assert {"posts.parquet", "view_snapshots.parquet", "posts.csv.gz"} <= {p.name for p in release.iterdir()}
        first = release / "run1.db"
        shutil.copyfile(release / "telegram.db", first)

        # The next run: every channel has news, and one channel of shard 2 lost its public
        # preview, so shard 2's crawl fails (after storing its other channels).
        for name in CHANNELS:
            fake.add_posts(name, 2)
        broken = in_shard(CHANNELS, 2, SHARDS)[0]
        fake.channel(broken).public_preview = False
        update, shards, failed = scheduled_run(tmp_path, url, "run2")
    assert shards[2].outputs["crawl"].returncode == 1 and f"MISSING {broken}" in shards[2].output("crawl")
    assert all(shards[i].outputs["crawl"].returncode == 0 for i in (0, 1, 3))
    assert failed == "shards", {k: v.stdout + v.stderr for k, v in update.outputs.items()}
    assert "::error title=Shard missing::shard 2/4" in update.output("crawl")
    assert "::error title=Shard failed::" in update.output("shards")
    assert "check passed" in update.output("check")  # nothing lost: published
    kept = set(in_shard(CHANNELS, 2, SHARDS))
    now = release / "telegram.db"
    assert per_channel_file(now, kept) == per_channel_file(first, kept)  # shard 2: as before
    counts = dict(rows(now, "select channel, count(*) from posts group by channel"))
    before = dict(rows(first, "select channel, count(*) from posts group by channel"))
    assert all(counts[c] == before[c] + (0 if c in kept else 2) for c in CHANNELS)


def per_channel_file(path: Path, channels: set[str]) -> dict:
    folder = path.parent / f"{path.stem}-copy"
    folder.mkdir(exist_ok=True)
    shutil.copyfile(path, folder / "telegram.db")
    return per_channel(folder, channels)
