"""stopcsam: anonymous therapy chat inside a randomized controlled trial."""
