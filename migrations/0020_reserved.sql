-- 0020: reserved for 0020_edges (issue 18), being written on another branch.
-- This placeholder only keeps the numbering gap-free on the security branch;
-- the merger replaces it with the real 0020 (it has never been released).
SELECT 1;
