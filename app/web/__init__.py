"""The served web app on ASGI: access rules, sign-in, the Panel pages and the REST API."""
