"""Model plumbing: the registry of published weights, the three profiles, tiny configs, the cache folder."""
