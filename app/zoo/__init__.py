"""The zoo: catalog, model pages, per-layer tables, formulas, layer statistics and their figures."""
