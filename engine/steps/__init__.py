"""The steps of a run, one module each: upload, consent, check (an existing look), rename,
create (with reconcile and adopt) and await (the generation). Each takes the run's
RunContext and one GraphNode, and returns the node's outcome."""
