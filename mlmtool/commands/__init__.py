"""One module per ``mlmtool`` sub-command; each is a thin shell over the library."""
