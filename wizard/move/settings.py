"""The configuration move: OPENAI_API_KEY leaves .env for a provider entry in the settings of user `anonymous`.

The migration guide's "Settings Migration": the key becomes
{"id", "name", "type": "openai", "apiKey", "enabled": true} in `settings.settings_data`
["providers"] of the row whose user_id is 'anonymous' (made when missing), in the
TARGET (PostgreSQL, or MySQL/MariaDB where the JSON is text under a check); then its line leaves .env, every other byte kept. Running it twice changes
nothing the second time (the entry is found by its key). The key is never shown
unmasked. Undone by restoring .env from the run's backup (the target's tables are
the run's own, dropped by its rollback).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import text

from wizard import envfile
from wizard.backup import keep_switched_env
from wizard.db import connect, write_transaction
from wizard.errors import StepError
from wizard.pg import connect_pg
from wizard.secrets import mask_key
from wizard.urls import DbUrl

VARIABLE = "OPENAI_API_KEY"
USER = "anonymous"
CHANGED_COLUMNS = ("settings_data", "updated_at")  # what the move changes in an existing row


@dataclass(frozen=True)
class SettingsMoved:
    key: str  # masked
    provider_id: str
    created_row: bool  # the settings row of `anonymous` did not exist
    already_there: bool  # an earlier (interrupted) run had added the entry
    row_id: int  # the settings row's id in the target

    def describe(self, env_file: Path) -> str:
        where = "a new settings row" if self.created_row else "the settings"
        if self.already_there:
            return f"{VARIABLE} ({self.key}) was already in {where} of user {USER}; removed from {env_file}"
        return f"{VARIABLE} ({self.key}) is now provider '{self.provider_id}' in {where} of user {USER}; " \
               f"removed from {env_file}"


def provider_entry(key: str, taken: set[str]) -> dict:
    pid = "openai"
    n = 2
    while pid in taken:
        pid, n = f"openai-{n}", n + 1
    return {"id": pid, "name": "OpenAI", "type": "openai", "apiKey": key, "enabled": True}


def key_preview(env_file: Path, reflected: bool = False) -> str | None:
    """What the switch will do with the key, said before it does (None when .env has none); masked.
    `reflected`: a copy of another app's tables as they are, which has no engine settings to take it."""
    key = envfile.value_in(env_file.read_bytes(), VARIABLE)
    if not key:
        return None
    if reflected:
        return f"{VARIABLE} ({mask_key(key)}) stays in {env_file}: {KEPT_WHY}"
    return f"{VARIABLE} ({mask_key(key)}) moves into the target's settings and leaves {env_file}"


KEPT_WHY = "a copy of another app's tables as they are has no engine settings to take it"


async def move_openai_key(env_file: Path, target: DbUrl, run_folder: Path) -> SettingsMoved | None:
    """Move the key (None when .env has none), and record the change in the run's folder (_record_change)."""
    data = env_file.read_bytes()
    key = envfile.value_in(data, VARIABLE)
    if not key:
        return None
    entry, created, found, row_id = await (_add_on_mysql if target.is_mysql else _add_on_postgresql)(target, key)
    moved = SettingsMoved(mask_key(key), entry["id"], created, found, row_id)
    _record_change(run_folder, moved)
    data = envfile.remove_variable(data, VARIABLE)
    keep_switched_env(data, run_folder)
    envfile.write_atomically(env_file, data)
    return moved


def _with_provider(settings_data: str | None, key: str) -> tuple[dict, dict, bool]:
    """The settings of `anonymous` (their JSON text; None: no row yet) with the key's provider entry in them:
    (settings, entry, whether the entry was there already)."""
    settings = json.loads(settings_data) if settings_data is not None else {}
    if not isinstance(settings, dict):
        raise StepError(f"the settings of user {USER} in the target are not a JSON object: fix that row, "
                        f"then run the move again with --resume")
    providers = settings.setdefault("providers", [])
    if not isinstance(providers, list):
        raise StepError(f"settings.providers of user {USER} in the target is not a list: fix that row, "
                        f"then run the move again with --resume")
    found = next((p for p in providers if isinstance(p, dict) and p.get("apiKey") == key), None)
    if found is not None:
        return settings, found, True
    entry = provider_entry(key, {str(p.get("id")) for p in providers if isinstance(p, dict)})
    providers.append(entry)
    return settings, entry, False


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


async def _add_on_postgresql(target: DbUrl, key: str) -> tuple[dict, bool, bool, int]:
    conn = await connect_pg(target)
    try:
        async with conn.transaction():
            row = await conn.fetchrow("SELECT id, settings_data FROM settings WHERE user_id = $1 FOR UPDATE", USER)
            settings, entry, found = _with_provider(row["settings_data"] if row else None, key)
            if found:
                return entry, False, True, row["id"]
            if row:
                await conn.execute("UPDATE settings SET settings_data = $1, updated_at = $2 WHERE id = $3",
                                   json.dumps(settings), _now(), row["id"])
                return entry, False, False, row["id"]
            row_id = await conn.fetchval("INSERT INTO settings (user_id, settings_data, created_at, updated_at) "
                                         "VALUES ($1, $2, $3, $3) RETURNING id", USER, json.dumps(settings), _now())
            return entry, True, False, row_id
    finally:
        await conn.close()


async def _add_on_mysql(target: DbUrl, key: str) -> tuple[dict, bool, bool, int]:
    async with connect(target) as conn, write_transaction(conn):
        row = (await conn.execute(text("SELECT id, settings_data FROM settings WHERE user_id = :u FOR UPDATE"),
                                  {"u": USER})).first()
        settings, entry, found = _with_provider(row.settings_data if row else None, key)
        if found:
            return entry, False, True, row.id
        values = {"u": USER, "d": json.dumps(settings), "t": _now()}
        if row:
            await conn.execute(text("UPDATE settings SET settings_data = :d, updated_at = :t WHERE id = :i"),
                               {**values, "i": row.id})
            return entry, False, False, row.id
        made = await conn.execute(text("INSERT INTO settings (user_id, settings_data, created_at, updated_at) "
                                       "VALUES (:u, :d, :t, :t)"), values)
        return entry, True, False, made.lastrowid


def _record_change(run_folder: Path, moved: SettingsMoved) -> None:
    """Tell `wizard verify --run` which settings row the move changed on purpose, and how:
    <run>/changed/settings.jsonl, as the copy's side files (quarantine, nulled) are kept."""
    folder = run_folder / "changed"
    folder.mkdir(mode=0o700, exist_ok=True)
    record = {"pk": moved.row_id, "columns": list(CHANGED_COLUMNS), "created": moved.created_row,
              "reason": f"{VARIABLE} moved into provider '{moved.provider_id}' of user {USER} by this run"}
    envfile.write_atomically(folder / "settings.jsonl", (json.dumps(record) + "\n").encode(), mode=0o600)
