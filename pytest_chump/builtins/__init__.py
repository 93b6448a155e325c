"""Built-in plugins: each module is registered like a third-party plugin (see plugins.py)."""
