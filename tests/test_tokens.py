"""The token store (spm_ml/tokens.py) and ``spm-ml token create|revoke|list``."""

from __future__ import annotations

import json
import os
import re
import stat
import threading

import pandas as pd
import pytest
from typer.testing import CliRunner

from spm_ml.cli import app
from spm_ml.errors import SpmMlError
from spm_ml.tokens import LiveTokens, TokenError, TokenStore, token_hash

TOKEN = re.compile(r"spm_[A-Za-z0-9_-]{43}")


@pytest.fixture
def store(tmp_path) -> TokenStore:
    return TokenStore(tmp_path / "tokens.json")


def test_a_created_token_is_found_and_only_its_hash_is_stored(store):
    token = store.create("ann", "manager", manager_id="R00007")
    assert TOKEN.fullmatch(token)
    record = store.lookup(token)
    assert (record.name, record.role, record.manager_id) == ("ann", "manager", "R00007")
    text = store.path.read_text()
    assert token not in text and token[4:] not in text
    assert token_hash(token) in text
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert store.lookup(token + "x") is None and store.lookup("") is None


def test_tokens_are_unique_and_listed_without_secrets(store):
    tokens = {store.create(f"t{i}", "coach") for i in range(20)}
    assert len(tokens) == 20
    listed = store.list()
    assert [row["name"] for row in listed] == [f"t{i}" for i in range(20)]
    fields = {"name", "role", "manager_id", "created_at", "revoked_at"}
    assert all(set(row) == fields for row in listed)
    assert not any(token in json.dumps(listed) for token in tokens)


@pytest.mark.parametrize(
    ("name", "role", "manager_id", "message"),
    [
        ("ann", "manager", None, "needs --manager-id"),
        ("ann", "coach", "R1", "manager tokens only"),
        ("ann", "admin", "R1", "manager tokens only"),
        ("ann", "root", None, "role 'root'"),
        ("has space", "coach", None, "token name"),
        ("", "coach", None, "token name"),
    ],
)
def test_bad_requests_are_refused(store, name, role, manager_id, message):
    with pytest.raises(TokenError, match=message):
        store.create(name, role, manager_id=manager_id)
    assert not store.exists()


def test_a_name_is_used_once_even_after_revocation(store):
    store.create("ann", "admin")
    with pytest.raises(TokenError, match="already exists"):
        store.create("ann", "coach")
    store.revoke("ann")
    with pytest.raises(TokenError, match="revoked"):
        store.create("ann", "coach")


def test_revocation_refuses_the_token_and_keeps_the_record(store):
    token = store.create("ann", "admin")
    other = store.create("bob", "coach")
    revoked = store.revoke("ann")
    assert revoked.revoked_at is not None
    assert store.lookup(token) is None and store.lookup(other).name == "bob"
    assert store.revoke("ann") == revoked  # again: nothing changes
    with pytest.raises(TokenError, match="no token named 'zed'"):
        store.revoke("zed")


def test_live_tokens_follow_the_file_without_being_rebuilt(store):
    live = LiveTokens(store.path)
    assert live.current() == () and not live.any_active()
    token = store.create("ann", "admin")
    assert live.lookup(token).name == "ann"
    records = live.current()
    assert live.current() is records  # unchanged file: not read again
    store.revoke("ann")
    assert live.lookup(token) is None


def test_a_damaged_file_refuses_every_token(store, caplog):
    token = store.create("ann", "admin")
    live = LiveTokens(store.path)
    assert live.lookup(token) is not None
    store.path.write_text("{not json")
    assert live.lookup(token) is None
    assert "every API token refused" in caplog.text
    assert token not in caplog.text


def test_concurrent_creates_lose_no_token(store):
    def create(i: int) -> None:
        store.create(f"t{i}", "coach")

    threads = [threading.Thread(target=create, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r["name"] for r in store.list()) == sorted(f"t{i}" for i in range(12))
    assert not list(store.path.parent.glob(".tokens-*"))  # no temporary file left behind


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_cli_create_prints_the_token_once_then_list_and_revoke(tmp_path):
    work = str(tmp_path)
    created = run("token", "create", "--name", "ops", "--role", "admin", "--workdir", work)
    assert created.exit_code == 0, created.output
    token = TOKEN.search(created.output).group()
    assert "will not be shown again" in created.output
    listed = run("token", "list", "--workdir", work, "--json")
    assert listed.exit_code == 0 and token not in listed.output
    assert json.loads(listed.output)[0]["name"] == "ops"
    assert run("token", "revoke", "ops", "--workdir", work).exit_code == 0
    assert TokenStore(tmp_path / "tokens.json").lookup(token) is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "ops", "--role", "admin"], "already exists"),
        (["--name", "m", "--role", "manager"], "needs --manager-id"),
        (["--name", "m", "--role", "manager", "--manager-id", "NOBODY"], "no rep in"),
    ],
)
def test_cli_errors_exit_2_with_a_message(tmp_path, args, message):
    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame({"rep_id": ["R1", "R2"], "manager_id": [None, "R1"]}).to_parquet(
        data / "reps.parquet"
    )
    run("token", "create", "--name", "ops", "--role", "admin", "--workdir", str(tmp_path))
    result = run("token", "create", *args, "--workdir", str(tmp_path))
    assert result.exit_code == 2
    assert message in result.output


def test_cli_accepts_a_manager_reps_report_to_and_refuses_unknown_revocations(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame({"rep_id": ["R1", "R2"], "manager_id": [None, "R1"]}).to_csv(
        data / "reps.csv", index=False
    )
    work = str(tmp_path)
    made = run(
        "token",
        "create",
        "--name",
        "m",
        "--role",
        "manager",
        "--manager-id",
        "R1",
        "--workdir",
        work,
    )
    assert made.exit_code == 0, made.output
    unknown = run("token", "revoke", "nobody", "--workdir", work)
    assert unknown.exit_code == 2 and "no token named 'nobody'" in unknown.output


def test_an_unreadable_file_refuses_every_token_and_says_why(store, caplog, monkeypatch):
    token = store.create("ann", "admin")

    def denied(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(type(store.path), "read_text", denied)
    assert LiveTokens(store.path).lookup(token) is None
    assert "cannot read the token file" in caplog.text and "Permission denied" in caplog.text
    with pytest.raises(SpmMlError, match="user owning it"):
        store.list()
