"""Task YAMLs for lm-eval (a package so that its directory can be located after installation)."""
