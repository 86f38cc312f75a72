-- 0024: reserved for a migration being written on another branch. This
-- placeholder only keeps the numbering gap-free on the docs branch; the
-- merger replaces it with the real 0024 (it has never been released).
SELECT 1;
