"""A plugin module whose own code fails while it is imported (not an ImportError)."""

raise ValueError("this plugin's module is broken on purpose")
