"""What the two web surfaces (the JSON API in :mod:`swarm_director.api` and the console in
:mod:`swarm_director.console`) share, so that neither imports the other.

- :mod:`.app`: the application factory, the one module that imports both surfaces and puts
  them on one Flask app. It stands above them; everything else here stands below them.
- :mod:`.context`: the app's state (settings, database) and the request's unit of work.
- :mod:`.errors`: every exception turned into the one JSON error shape (the console uses it
  for status codes, and for logging what it cannot show).
- :mod:`.auth` and :mod:`.throttle`: who a request is. A bearer token (the API) and a typed
  key (the console's login form) both become a ``Principal`` through :func:`.auth.authenticate`,
  and failures count against one budget per address and key id. That is why they are here:
  two front doors, one rule.
- :mod:`.actors`: who a request acts as for the history, and its ``X-Request-ID``; every
  request has one, whichever surface served it.

What stays in a surface is what only it does: the API's guards (bearer tokens, scopes, body
limits; :mod:`swarm_director.api.guards`) and OpenAPI document, the console's login sessions
and pages. Where one surface needs something of the other at run time, it goes through the
app: the console lends the API's guard its sessions (for the live log streams a page opens)
by registering a callable under :data:`.auth.SESSION_AUTH`.

This package's ``__init__`` imports nothing: ``web.context`` and the others are imported by the
surfaces, and importing them must not pull in the factory (and with it both surfaces).
"""
