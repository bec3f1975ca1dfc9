"""Integrations with other libraries, each in a module importing its library (install the
matching extra, e.g. ``alsek[sqlalchemy]``)."""
