"""Reports: tables, plots, Pareto fronts and picks."""
