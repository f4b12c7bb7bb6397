"""Data contracts: the input format (schema.py), the wire messages (messages.py), and a batch of
messages decoded into a typed frame (batch_decode.py).

May import: the foundations (config, logs, telemetry) only.
"""
