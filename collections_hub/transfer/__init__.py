"""Moving collections between services: `migrate` (from a dialect B or C service), `export` and `import`."""
