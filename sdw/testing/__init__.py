"""Known toy data for tests and benchmarks: linear teachers, random datasets, Gaussian mixtures with exact densities."""
