# FID reports and study statistics.
