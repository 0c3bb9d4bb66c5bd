"""Built-in batch plugins, task message builders and item handlers."""
