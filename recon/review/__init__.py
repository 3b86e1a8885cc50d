"""Review: the exceptions of finished jobs and the work that explains them."""
