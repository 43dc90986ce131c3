"""NautilusTrader strategies shipped with the workbench (importable in workers and engines)."""
