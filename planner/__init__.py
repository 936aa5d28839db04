"""Logical planning of SemQL queries: SQL AST -> plan of relational and LM operators."""
