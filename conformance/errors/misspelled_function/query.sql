SELECT REGEXMACH(plate, '[0-9]+') AS digits
FROM input
