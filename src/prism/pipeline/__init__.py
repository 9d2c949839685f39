"""The worker: strings the steps together and persists each decision. The only place that does."""
