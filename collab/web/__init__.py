"""The browser workspace: its bundle (``bundle``: find, check, build) and its routes
(``routes``: ``/``, the hashed assets, the service worker, the app's own paths)."""
