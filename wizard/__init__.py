"""The migration wizard's service layer: no Textual imports outside app.py and cli.py."""

__version__ = "0.1.0"
