-- Five clearly positive reviews (any movie). Return reviewId.
SELECT reviewId FROM Reviews
WHERE {{LLMMap('Is this movie review clearly positive?', reviewText,
        examples=(('A joyless, plodding mess that wastes its talented cast.', FALSE),
                  ('Funny, warm and beautifully made: a delight from start to finish.', TRUE),
                  ('It has a few good moments, but mostly it drags.', FALSE),
                  ('A thrilling, confident film that earns every one of its surprises.', TRUE)))}}
LIMIT 5
