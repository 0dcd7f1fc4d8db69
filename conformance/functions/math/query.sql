-- Mathematical functions over bigint and float values: bigint stays bigint where the
-- function keeps the argument's type (ABS, CEILING, FLOOR, ROUND, SIGN); ROUND rounds
-- half away from zero; POWER keeps the type of its first argument; NULL in, NULL out.
SELECT
    ABS(i) AS abs_i, ABS(f) AS abs_f,
    CEILING(i) AS ceiling_i, CEILING(f) AS ceiling_f,
    FLOOR(i) AS floor_i, FLOOR(f) AS floor_f,
    ROUND(f, 2) AS round_f2, ROUND(f, 0) AS round_f0, ROUND(i, -1) AS round_i_tens,
    SIGN(i) AS sign_i, SIGN(f) AS sign_f,
    EXP(0) AS exp0,
    POWER(2, 10) AS power_i, POWER(f, 2) AS power_f,
    SQRT(16) AS sqrt,
    SQUARE(i) AS square_i,
    i / 2 AS int_div, i % 4 AS int_mod, f * 2 AS float_mul
FROM input
