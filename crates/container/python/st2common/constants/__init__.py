"""``st2common.constants``: only ``keyvalue`` is provided (see the package
docstring of ``st2common``)."""
