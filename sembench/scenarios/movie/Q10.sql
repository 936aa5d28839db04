-- Rank the movies: score every review of each movie from 1 to 5 and average per movie.
SELECT id AS movieId,
       AVG({{LLMMap('Score from 1 to 5 how much the reviewer liked the movie.', reviewText,
         options=(1, 2, 3, 4, 5),
         examples=(('A joyless, plodding mess that wastes its talented cast.', 1),
                   ('It has a few good moments, but mostly it drags.', 2),
                   ('Competent and watchable, if forgettable.', 3),
                   ('Funny and warm, with a couple of flat stretches.', 4),
                   ('A thrilling, confident film that earns every one of its surprises.', 5)))}})
       AS movieScore
FROM Reviews
GROUP BY id
