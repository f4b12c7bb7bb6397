"""Running and watching the system: the services' entry points, `run` (supervisor), `status`,
`bench` and its load generator.

May import: ui, infra, pipeline, ml, contracts and the foundations. Only cli imports ops.
"""
