-- All pairs of reviews with the *opposite* sentiment for movie 'ant_man_and_the_wasp_quantumania'.
-- Each review is classified once by the LM; DuckDB pairs them.
WITH s AS (
  SELECT id, reviewId, {{LLMMap('What is the sentiment of this movie review?', reviewText,
         options=('positive', 'negative'),
         examples=(('A joyless, plodding mess that wastes its talented cast.', 'negative'),
                   ('Funny, warm and beautifully made: a delight from start to finish.', 'positive'),
                   ('It has a few good moments, but mostly it drags.', 'negative'),
                   ('A thrilling, confident film that earns every one of its surprises.', 'positive')))}} AS sentiment
  FROM Reviews
  WHERE id = 'ant_man_and_the_wasp_quantumania'
)
SELECT R1.id, R1.reviewId AS reviewId1, R2.reviewId AS reviewId2
FROM s AS R1 JOIN s AS R2 ON R1.id = R2.id AND R1.reviewId <> R2.reviewId
WHERE R1.sentiment <> R2.sentiment

