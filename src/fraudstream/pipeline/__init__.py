"""The stream services: the producer behind `send`, the detector (detector/), the sink, and the
Kafka module (kafka.py) every Kafka client of the project is configured and read through.

May import: ml, contracts and the foundations. Never ops, ui, infra or cli.
"""
