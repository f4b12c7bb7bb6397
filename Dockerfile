# One image for every fraudstream service: `docker run fraudstream <subcommand>`, as compose's `command:`.

# Builder: the project and its dependencies, from pyproject.toml alone, into a self-contained venv.
FROM python:3.11-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
WORKDIR /build
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/venv/bin/pip install --upgrade pip && /opt/venv/bin/pip install .

# Runtime: the venv only, run by an unprivileged user. No libgomp1: catboost links OpenMP statically
# and scikit-learn ships its own.
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 fraudstream
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1
USER fraudstream
WORKDIR /home/fraudstream
EXPOSE 8501 9101 9102
ENTRYPOINT ["fraudstream"]
CMD ["--help"]
