"""Revaer's read surfaces: the HTTP API and the shapes and operations it shares with the CLI.

This package imports nothing from the ``api`` extra at the top: :mod:`.models`
and :mod:`.operations` serve the CLI without Litestar installed. The app lives
in :mod:`revaer_core.api.app` (``create_app``) and the server in
:mod:`revaer_core.api.server` (``ApiServer``); both need ``revaer-core[api]``.
"""
