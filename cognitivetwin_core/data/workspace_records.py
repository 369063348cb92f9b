"""Records other modules own, kept in the workspace: Phase 1 jobs, Phase 2 runs and adapters."""

from __future__ import annotations

import json

from cognitivetwin_core.data.workspace_connection import WorkspaceConnection, now_text


class WorkspaceRecords(WorkspaceConnection):
    """Phase 1 jobs and Phase 2 runs (JSON fields merged on update), and adapter folders."""

    def _upsert_record(self, table: str, key_column: str, key: str, fields: dict) -> None:
        with self._transaction() as db:
            row = db.execute(f"SELECT fields FROM {table} WHERE {key_column}=?", (key,)).fetchone()
            merged = {**(json.loads(row[0]) if row else {}), **fields}
            payload = json.dumps(merged, ensure_ascii=False, default=str)
            now = now_text()
            if row:
                db.execute(f"UPDATE {table} SET fields=?, updated_at=? WHERE {key_column}=?", (payload, now, key))
            else:
                db.execute(
                    f"INSERT INTO {table}({key_column}, fields, created_at, updated_at) VALUES(?,?,?,?)",
                    (key, payload, now, now),
                )

    def _records(self, table: str, key_column: str, key: str | None = None) -> list[dict]:
        where = f" WHERE {key_column}=?" if key is not None else ""
        rows = self._query(
            f"SELECT {key_column}, fields, created_at, updated_at FROM {table}{where} ORDER BY created_at, rowid",
            (key,) if key is not None else (),
        )
        return [
            {**json.loads(fields), key_column: record_key, "created_at": created, "updated_at": updated}
            for record_key, fields, created, updated in rows
        ]

    def upsert_phase1_job(self, job_id: str, fields: dict) -> None:
        """Create or update a Phase 1 job record; `fields` are merged into the stored ones."""
        self._upsert_record("phase1_jobs", "job_id", job_id, fields)

    def phase1_jobs(self) -> list[dict]:
        return self._records("phase1_jobs", "job_id")

    def get_phase1_job(self, job_id: str) -> dict | None:
        records = self._records("phase1_jobs", "job_id", job_id)
        return records[0] if records else None

    def delete_phase1_job(self, job_id: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM phase1_jobs WHERE job_id=?", (job_id,))

    def upsert_phase2_run(self, run_id: str, fields: dict) -> None:
        """Create or update a Phase 2 run record; `fields` are merged into the stored ones."""
        self._upsert_record("phase2_runs", "run_id", run_id, fields)

    def phase2_runs(self) -> list[dict]:
        return self._records("phase2_runs", "run_id")

    def get_phase2_run(self, run_id: str) -> dict | None:
        records = self._records("phase2_runs", "run_id", run_id)
        return records[0] if records else None

    def register_adapter(self, adapter_id: str, path, lineage: dict) -> None:
        """Record (or re-record) an adapter folder with where it came from."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO adapters(adapter_id, path, lineage, created_at) VALUES(?,?,?,?) "
                "ON CONFLICT(adapter_id) DO UPDATE SET path=excluded.path, lineage=excluded.lineage",
                (adapter_id, str(path), json.dumps(lineage, ensure_ascii=False, default=str), now_text()),
            )

    def adapters(self) -> list[dict]:
        rows = self._query("SELECT adapter_id, path, lineage, created_at FROM adapters ORDER BY created_at, rowid")
        return [
            {"adapter_id": adapter_id, "path": path, "lineage": json.loads(lineage), "created_at": created}
            for adapter_id, path, lineage, created in rows
        ]

    def get_adapter(self, adapter_id: str) -> dict | None:
        return next((record for record in self.adapters() if record["adapter_id"] == adapter_id), None)
