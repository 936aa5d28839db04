-- Q9 reworded: a 1-5 rating of each review of ant_man_and_the_wasp_quantumania.
SELECT reviewId,
       {{LLMMap('On a scale of 1 to 5, how favourable is this review?', reviewText,
         options=(1, 2, 3, 4, 5),
         examples=(('I was bored stiff and the plot made no sense at all.', 1),
                   ('Pleasant enough, but it never really comes alive.', 2),
                   ('Middling: neither good nor bad, just there.', 3),
                   ('Very enjoyable despite a weak final act.', 4),
                   ('One of the finest films of the decade, superbly acted.', 5)))}}
       AS reviewScore
FROM Reviews
WHERE id = 'ant_man_and_the_wasp_quantumania'
