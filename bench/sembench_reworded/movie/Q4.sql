-- Q4 reworded: the share of favourable reviews of taken_3.
SELECT AVG(CASE WHEN {{LLMMap('Did the reviewer enjoy the movie?', reviewText,
        examples=(('One of the finest films of the decade, superbly acted.', TRUE),
                  ('I was bored stiff and the plot made no sense at all.', FALSE),
                  ('Sharp, stylish and endlessly entertaining.', TRUE),
                  ('Pleasant enough, but it never really comes alive.', FALSE)))}}
        THEN 1.0 ELSE 0.0 END) AS positivity_ratio
FROM Reviews
WHERE id = 'taken_3'
