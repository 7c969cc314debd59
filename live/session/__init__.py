"""The show: its stage contracts (`stages`), the preset + command line → `ShowSpec` (`show`), the one
builder of stages (`factory`), the session (`session`) and its loops, one module each.

Nothing is imported here, so importing one of these modules does not build the rest."""
