-- Score from 1 to 5 how much the reviewer liked the movie, for 'ant_man_and_the_wasp_quantumania'.
SELECT reviewId,
       {{LLMMap('Score from 1 to 5 how much the reviewer liked the movie.', reviewText,
         options=(1, 2, 3, 4, 5),
         examples=(('A joyless, plodding mess that wastes its talented cast.', 1),
                   ('It has a few good moments, but mostly it drags.', 2),
                   ('Competent and watchable, if forgettable.', 3),
                   ('Funny and warm, with a couple of flat stretches.', 4),
                   ('A thrilling, confident film that earns every one of its surprises.', 5)))}}
       AS reviewScore
FROM Reviews
WHERE id = 'ant_man_and_the_wasp_quantumania'
