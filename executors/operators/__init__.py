"""Plan operators run against DuckDB: the engine, run-time filter order, LLMQA, LLMJoin
candidates, the run's own state, DuckDB error mapping.
"""
