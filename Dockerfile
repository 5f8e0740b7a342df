# Build the wheels (with the C speed-ups) where a compiler is, run them where none is.
FROM python:3.11.7-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md MANIFEST.in ./
COPY logrouter ./logrouter
COPY drains ./drains
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[cluster]"

FROM python:3.11.7-slim-bookworm
WORKDIR /app
COPY --from=build /wheels /wheels
COPY config ./config
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && python -c "import logrouter.protocol._speedups" \
    && useradd --system --uid 10001 --home /data logrouter && mkdir -p /data && chown 10001 /data
USER 10001
ENV LOGROUTER_DATA_DIR=/data LOGROUTER_CONFIG=/app/config/docker.toml
VOLUME /data
EXPOSE 6001 6514 8601 8001
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
    CMD ["python", "-c", "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8001/readyz', timeout=2).status != 200)"]
ENTRYPOINT ["logrouter"]
CMD ["serve"]
