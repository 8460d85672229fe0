"""The experiment app: `sdw-run`, its run directory, logging and sweeps."""
