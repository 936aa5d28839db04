"""Versions of the decoding recipes, part of every result-cache key.

A cached answer is served only to a runtime whose recipe would decode it the same way,
so each number is bumped whenever a change in decoding can change answers (the key also
names the rows per decode, since a decode's shape is part of its numbers).
"""

# Rows one at a time (DECODING) and several rows per decode (BATCHED_DECODING):
# 2: where the grammar may end, a next token of the model's outside it ends the answer.
# 3: closed-set rows scored BATCH_ROWS at a time in fixed-shape decodes (batch_scorer.py);
# the key names the rows per decode, since the shape is part of the numbers.
# 4: generated answers too (batch_generator.py).
# 3 (one row) and 5 (batched, whose prompts of several fields go one row at a time):
# prefill chunks of 64 tokens, not 16, and the answer cue in the last field's chunk.
# 6 (one row) and 8 (batched): a label's first token is scored by its logit, not its
# log-probability (the same label probabilities; output_head.py computes only those
# logits, and batched, for labels of one token, stops every decode at the final norm).
# 9 (batched): a generated token chosen from few allowed tokens takes their logits from
# the output head, and a decode whose outputs no row reads (prompt pieces before a row's
# last) stops at the final norm (batch_generator.decode_reading, batch_scorer.py).
# 7 (one row) and 10 (batched, whose prompts of several fields go one row at a time): a
# label's later tokens are decoded together, one sequence a label prefix sharing the
# row's cells, in one decode (label_scores.py), not one decode a token.
# 11 (batched): a label set with a label of several tokens is scored one row at a time
# (label_scores.batched), as DECODING 7 scores it.
# 12 (batched): a prompt longer than a stream (batch_scorer.STREAM_CELLS, 1024 KV cells,
# before it the model's context) goes one row at a time.
DECODING = 7
BATCHED_DECODING = 12
# The answer steps that rows one at a time share (shared_steps.py). 2: a step whose
# allowed tokens are few takes their logits from the output head. 3: the prompt's decode
# takes along the first answer token that the grammar all but fixes (greedy.py
# ``lookahead``), and a row that chooses it reads its next step from that decode.
# 4: a prompt and answer longer than a stream (batch_scorer.STREAM_CELLS) go one row at a
# time in the runtime's own context.
STEPS_DECODING = 4
