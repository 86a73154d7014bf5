"""Package data: the global models shipped with aicache (read by ``aicache.registry.shipped``)."""
