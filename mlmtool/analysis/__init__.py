"""Analyses: each module turns model output from :mod:`mlmtool.core.forward` into plain results.

Import the public names from :mod:`mlmtool` (the facade); this package re-exports nothing, so
no function name can be shadowed by a module of the same name.
"""
