"""Face geometry, the one home of it: MediaPipe landmarks and their indices, the inter-ocular
distance and mouth opening, the canonical head pose, similarity alignment, the landmark warp of
the lower face and the mouth renderer built on it. Data preparation, the models, reenactment and
the metrics all import it from here."""
