"""NautilusTrader configs as data: the engine templates (backtest, paper, sandbox, live) and the
strategy templates under ``strategies/``. A package only so that they ship inside the wheel and
are found from an installed workbench (services.settings.default_templates_dir)."""
