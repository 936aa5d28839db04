-- Q5 reworded: ten pairs with the same opinion, ant_man_and_the_wasp_quantumania.
WITH labelled AS (
  SELECT id, reviewId, {{LLMMap('Is the opinion in this review positive or negative?', reviewText,
         options=('positive', 'negative'),
         examples=(('Sharp, stylish and endlessly entertaining.', 'positive'),
                   ('Pleasant enough, but it never really comes alive.', 'negative'),
                   ('I was bored stiff and the plot made no sense at all.', 'negative'),
                   ('One of the finest films of the decade, superbly acted.', 'positive')))}} AS opinion
  FROM Reviews
  WHERE id = 'ant_man_and_the_wasp_quantumania'
)
SELECT R1.id, R1.reviewId AS reviewId1, R2.reviewId AS reviewId2
FROM labelled AS R1 JOIN labelled AS R2 ON R1.id = R2.id AND R1.reviewId <> R2.reviewId
WHERE R1.opinion = R2.opinion
LIMIT 10
