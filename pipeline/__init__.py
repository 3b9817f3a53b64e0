"""Pipeline: event schema, micro-batching, the run loop, sinks, metrics and the CLI."""
