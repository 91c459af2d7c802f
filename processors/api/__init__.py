"""The admin HTTP server and its routes: the only place where answers become JSON.

``server`` runs the aiohttp application (auth, TLS); each ``*_routes`` module parses its query
parameters, asks a typed query object and serializes the answer. The dashboard's page lives in
``static/``. May import every stage; only the assembly (``serve_config``, ``service``, ``components``) imports it.
"""
