-- checks: a statement that starts with an unknown word
SELEC a FROM input
