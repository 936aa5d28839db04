-- Number of positive and negative reviews for movie "taken_3". Return scoreSentiment and count.
SELECT {{LLMMap('What is the sentiment of this movie review?', reviewText,
         options=('POSITIVE', 'NEGATIVE'),
         examples=(('A joyless, plodding mess that wastes its talented cast.', 'NEGATIVE'),
                   ('Funny, warm and beautifully made: a delight from start to finish.', 'POSITIVE'),
                   ('It has a few good moments, but mostly it drags.', 'NEGATIVE'),
                   ('A thrilling, confident film that earns every one of its surprises.', 'POSITIVE')))}}
       AS scoreSentiment,
       COUNT(*) AS count
FROM Reviews
WHERE id = 'taken_3'
GROUP BY scoreSentiment
