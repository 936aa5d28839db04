-- Q1 reworded: five reviews that are clearly favourable, any movie.
SELECT reviewId FROM Reviews
WHERE {{LLMMap('Does the critic clearly praise this film?', reviewText,
        examples=(('I was bored stiff and the plot made no sense at all.', FALSE),
                  ('One of the finest films of the decade, superbly acted.', TRUE),
                  ('Pleasant enough, but it never really comes alive.', FALSE),
                  ('Sharp, stylish and endlessly entertaining.', TRUE)))}}
LIMIT 5
