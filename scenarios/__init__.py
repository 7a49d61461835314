"""scenarios: the simulated city (the laboratory), the scoreboard (`fleetwatch evaluate`), benchmarks and
the command line that composes everything."""
