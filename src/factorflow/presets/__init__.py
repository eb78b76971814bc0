"""Named configs: tiny (tests), cpu-small (2-core demo), paper (thesis scale, GPU)."""
