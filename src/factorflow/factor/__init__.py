"""The paper's layer on top of the flow: attribute factorization, MI-flow condition and priors,
their losses as pure functions, and MI bounds."""
