"""Reenactment pipeline: align -> encode -> recombine -> decode -> paste back -> write video."""
