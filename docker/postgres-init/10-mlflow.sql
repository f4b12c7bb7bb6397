-- MLflow's backend store: a database of its own next to fraudstream's (run once, when the volume is new).
CREATE DATABASE mlflow;
