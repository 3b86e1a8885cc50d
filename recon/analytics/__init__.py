"""Analytics: how well a project reconciles, over its jobs and its open exceptions."""
