"""Developer tools (not used by the server): checks of the code base itself, and a throwaway
PostgreSQL cluster for tests and benchmarks (pg_cluster.py)."""
