"""The benchmark: `wizard migrate` against pgloader and a raw asyncpg COPY floor.

Run it from the repository root: `python -m bench --sizes 100000,1000000`.
Nothing here is imported by the wizard or the tests; timings are never asserted.
"""
