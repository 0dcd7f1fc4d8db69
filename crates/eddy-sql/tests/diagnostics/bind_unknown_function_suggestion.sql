-- checks: an unknown function gets a did-you-mean from edit distance
SELECT UPPR(name) FROM input
