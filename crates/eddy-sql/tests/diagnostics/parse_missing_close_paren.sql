-- checks: a call missing its closing parenthesis
SELECT COUNT(a FROM input
