"""The served multi-page app and the command line; composes components over services."""
