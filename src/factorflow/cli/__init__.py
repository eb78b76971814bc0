"""The `factorflow` console script: one small module per subcommand."""
