-- checks: a job with no statement


