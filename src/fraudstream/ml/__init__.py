"""Machine learning: features shared by training and serving, the CatBoost model and its
explanations, training, evaluation, offline scoring, and the shipped model (default_model/).

May import: contracts and the foundations. Never Kafka, PostgreSQL or the services.
"""
