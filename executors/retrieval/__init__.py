"""Retrieval for LM calls (planner/retrieval.py): stored indexes (embedding views and a
BM25 term index) in the query's database, and exact top-k search over them.
"""
