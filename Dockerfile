# One image for every service (migrate, web, worker, beat): see docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CONNECTOR_VAR_DIR=/app/var

WORKDIR /app

# Pinned, hash-checked dependencies (requirements.lock, made by pip-compile from
# pyproject.toml: see docs/deployment.md) in their own layer, so code changes rebuild fast.
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock

COPY manage.py pyproject.toml ./
COPY config config
COPY brightpearl brightpearl
COPY returns returns
COPY connector connector
# The shared HTTP core of the sandboxes (test and demo servers; `manage.py demo` needs it).
COPY sandboxes sandboxes

# Static files are part of the image: hashed and compressed, served by WhiteNoise.
RUN STATIC_MANIFEST=true SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput

# Never run as root: an unprivileged user that owns only var/ (the beat schedule, caches).
RUN groupadd --system --gid 10001 connector \
    && useradd --system --uid 10001 --gid connector --home-dir /app --shell /usr/sbin/nologin connector \
    && chown -R connector:connector /app/var
USER connector

EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind=0.0.0.0:8000"]
