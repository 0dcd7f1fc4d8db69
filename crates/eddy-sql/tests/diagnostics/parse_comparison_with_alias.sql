-- checks: `a = b AS x` (alias = expr, then AS) suggests parentheses for a comparison
SELECT id, status = 'open' AS is_open FROM input
