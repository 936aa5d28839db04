-- Five positive reviews for movie "taken_3". Return reviewId.
SELECT reviewId FROM Reviews
WHERE id = 'taken_3'
  AND {{LLMMap('Is this movie review positive?', reviewText,
        examples=(('A joyless, plodding mess that wastes its talented cast.', FALSE),
                  ('Funny, warm and beautifully made: a delight from start to finish.', TRUE),
                  ('It has a few good moments, but mostly it drags.', FALSE),
                  ('A thrilling, confident film that earns every one of its surprises.', TRUE)))}}
LIMIT 5
