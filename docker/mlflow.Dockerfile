# The MLflow tracking server and registry of docker-compose: MLflow's image plus psycopg 3, the driver
# its SQLAlchemy 2 store needs for postgresql+psycopg:// (the image has no database driver).
FROM ghcr.io/mlflow/mlflow:v3.17.2
RUN pip install --no-cache-dir 'psycopg[binary]>=3.2,<4'
