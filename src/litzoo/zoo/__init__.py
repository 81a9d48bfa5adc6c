"""The model zoo: every model entry and recipe with its size, cost and published number
(`python -m litzoo.zoo`), and each recipe's tiny CPU variant. Consumes configs and run
directories; the platform never imports it."""
