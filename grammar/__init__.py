"""Output types of LM calls, their grammars, and type inference from the SQL around a call."""
