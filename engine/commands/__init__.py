"""One module per command: the glue between the CLI and the engine's modules."""
