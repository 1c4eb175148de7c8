"""Catalogues: one record per task and per metric, from which YAMLs, flags, tables and docs derive."""
