"""Processing steps: the registry (@step), chains and runners. No Qt."""
