"""Benchmarks of ppolearn against Stable-Baselines3: `python -m benchmarks.run` (see BENCHMARKS.md)."""
