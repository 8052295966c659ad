"""Security tests: hostile paths, inputs, claims, rate limits, convergence, supervision (issue 10)."""
