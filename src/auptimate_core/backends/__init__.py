"""Storage backends: memory, Redis and SQL. Each imports its driver only when used."""
