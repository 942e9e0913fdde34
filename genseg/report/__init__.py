"""From metrics JSONs to a tidy table, then to tables and figures."""
