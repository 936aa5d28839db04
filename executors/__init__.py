"""Execution: DuckDB for relational work, llama.cpp (or an HTTP endpoint) for LM work."""
