-- Placeholder so that branch issue-4 can apply its 0007 (migrations are numbered
-- without gaps). DELETE AT MERGE: the real 0002 comes from another branch.
SELECT 1;
