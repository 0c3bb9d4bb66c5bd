"""The ``jobservice`` command: defined in :mod:`.app`, run by :mod:`.main`."""
