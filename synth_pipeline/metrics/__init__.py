"""Pure metric functions; each returns a MetricResult."""
