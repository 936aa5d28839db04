-- Number of positive and negative reviews for movie "taken_3". Return scoreSentiment and count.
-- Lower-case labels, upper-cased in SQL: with greedy decoding, before closed sets were
-- scored, Gemma 270M answered NEGATIVE for every review with upper-case ones.
SELECT upper({{LLMMap('What is the sentiment of this movie review?', reviewText,
         options=('positive', 'negative'),
         examples=(('A joyless, plodding mess that wastes its talented cast.', 'negative'),
                   ('Funny, warm and beautifully made: a delight from start to finish.', 'positive'),
                   ('It has a few good moments, but mostly it drags.', 'negative'),
                   ('A thrilling, confident film that earns every one of its surprises.', 'positive')))}})
       AS scoreSentiment,
       COUNT(*) AS count
FROM Reviews
WHERE id = 'taken_3'
GROUP BY scoreSentiment
