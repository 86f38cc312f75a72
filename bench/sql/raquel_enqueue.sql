-- pgbench: one raquel_enqueue call per transaction (scenario 1).
SELECT raquel_enqueue('bench_pgbench', 'x');
