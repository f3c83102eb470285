"""Verification: the target holds the source, row by row, and its schema is what its revision creates.

Owns the comparison and nothing that writes a database: the journey (`run`), the schema half (`schema`),
each side read in key order (`sides`; MySQL's in `myside`, the servers' chunks read ahead by `ahead`), one table compared row by row (`rows`), the verifier's own reading
of a source value (`values`), how a difference is shown (`show`), and the report (`report`).
"""
