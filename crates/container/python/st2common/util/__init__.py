"""``st2common.util``: only ``isotime`` and ``date`` are provided (see the
package docstring of ``st2common``)."""
