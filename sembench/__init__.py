"""SemBench runner: scenarios, queries, scoring and reports (uses only the public API)."""
