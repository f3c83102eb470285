"""The move: the engine's SQLite database to PostgreSQL.

Owns what a move decides and does: the plan and the pre-flight (`plan`, `preflight`), the source's tables
and their value kinds (`tables`, `typemap`, `normalize`, `pgnames`), the data scan and its policies (`scan`),
the target's schema (`target_schema`), the copy (`copy`), the .env switch and the settings move (`switch`,
`settings`), the run report (`report`), and the journey that composes them (`run`).
"""
