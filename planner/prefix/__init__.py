"""Prefix-sharing maximisation (Liu et al., seeds 002-003): orders of rows and of the
fields inside each row so that consecutive LM prompts share long prefixes."""
