-- Q8 reworded: how many positive and negative reviews taken_3 has.
SELECT upper({{LLMMap('Is the opinion in this review positive or negative?', reviewText,
         options=('positive', 'negative'),
         examples=(('Sharp, stylish and endlessly entertaining.', 'positive'),
                   ('Pleasant enough, but it never really comes alive.', 'negative'),
                   ('I was bored stiff and the plot made no sense at all.', 'negative'),
                   ('One of the finest films of the decade, superbly acted.', 'positive')))}})
       AS scoreSentiment,
       COUNT(*) AS count
FROM Reviews
WHERE id = 'taken_3'
GROUP BY scoreSentiment
