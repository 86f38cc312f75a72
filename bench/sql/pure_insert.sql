-- pgbench: one plain INSERT into the minimal table per transaction (scenario 1's reference).
INSERT INTO sql_jobs (queue, payload) VALUES ('bench', 'x');
