"""LM calls of one operator: prompts to answers (result cache first), closed-set scoring
and calibration, per-query budgets and statistics.
"""
