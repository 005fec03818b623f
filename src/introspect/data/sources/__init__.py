"""The dataset sources: every module in this package registers one (see :mod:`introspect.data.base`).

A new dataset is one new module here; :mod:`introspect.data` imports them all, so nothing else
lists them.
"""
