"""ReaMaster's companion server, its client and the ``reamaster`` command line."""
