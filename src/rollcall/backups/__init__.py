"""Backups: online snapshots of the database, checked and described by a manifest, verified again
on demand, restored in one step, with the erasures made since a backup applied again.

`snapshots` takes, lists, verifies and restores them (SQLite's online backup API; `pg_dump` and
`pg_restore` on PostgreSQL); `schedule` takes them every `ROLLCALL_BACKUP_INTERVAL` in a process of
`rollcall serve`; `reconcile` brings the database's erasure ledger and the ledger file in the
backup directory together (`members.ledger`).
"""
