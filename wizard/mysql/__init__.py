"""MySQL and MariaDB: what the wizard does on them that differs from SQLite and PostgreSQL.

One kind of database for both (wizard.urls: mysql://, mariadb://); the server's version string tells them
apart. The driver is aiomysql (README, "MySQL and MariaDB"); the dump and its proof use the server's own
clients, mysqldump and mysql, or the wizard's own streamed dump where they are not installed (stream_dump).
"""
