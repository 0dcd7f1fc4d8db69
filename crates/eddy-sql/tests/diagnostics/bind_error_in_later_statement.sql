-- checks: errors in a later statement point at its line
SELECT * INTO a FROM input
SELECT * INTO b FROM input
SELECT k, LEN(k, 2) INTO c FROM input
