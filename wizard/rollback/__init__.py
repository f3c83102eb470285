"""Rollback: a run's journal walked backwards, each recorded step undone.

Owns the undo registry and the journey (`run`), what was written since a run finished (`since`), the rows
kept before a rollback takes them away (`saved_rows`), and undoing a move (`undo_move`: the rows carried
back into the source, a SQLite file by `carry_back` or a MySQL/MariaDB database by `carry_mysql`, then the
target's tables dropped).
"""
