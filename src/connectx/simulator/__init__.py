"""``connectx simulator``: a local, faithful fake of Meta's WhatsApp Cloud API (docs/simulator.md).

:func:`connectx.simulator.app.create_app` builds the ASGI app; :class:`connectx.simulator.core.
Simulator` holds its state and rules; :mod:`connectx.simulator.settings` its configuration.
"""
