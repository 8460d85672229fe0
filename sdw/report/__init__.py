"""`sdw-report`: run directories -> runs.csv (collect) -> tables and plots (the papers' layout)."""
