-- checks: an unknown function with no close match
SELECT frobnicate(name) FROM input
