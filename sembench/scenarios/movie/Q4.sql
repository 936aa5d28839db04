-- Positivity ratio of reviews for movie "taken_3". Return the ratio as positivity_ratio.
SELECT AVG(CASE WHEN {{LLMMap('Is this movie review positive?', reviewText,
        examples=(('A joyless, plodding mess that wastes its talented cast.', FALSE),
                  ('Funny, warm and beautifully made: a delight from start to finish.', TRUE),
                  ('It has a few good moments, but mostly it drags.', FALSE),
                  ('A thrilling, confident film that earns every one of its surprises.', TRUE)))}} THEN 1.0 ELSE 0.0 END) AS positivity_ratio
FROM Reviews
WHERE id = 'taken_3'
