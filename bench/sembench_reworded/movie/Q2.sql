-- Q2 reworded: five favourable reviews of taken_3.
SELECT reviewId FROM Reviews
WHERE id = 'taken_3'
  AND {{LLMMap('Did the reviewer enjoy the movie?', reviewText,
        examples=(('One of the finest films of the decade, superbly acted.', TRUE),
                  ('I was bored stiff and the plot made no sense at all.', FALSE),
                  ('Sharp, stylish and endlessly entertaining.', TRUE),
                  ('Pleasant enough, but it never really comes alive.', FALSE)))}}
LIMIT 5
