# Build the wheels (with the C speed-ups) where a compiler is, run them where none is.
FROM python:3.11 AS build
WORKDIR /src
COPY pyproject.toml README.md MANIFEST.in ./
COPY logrouter ./logrouter
COPY drains ./drains
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
WORKDIR /app
COPY --from=build /wheels /wheels
COPY config ./config
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && python -c "import logrouter.protocol._speedups" \
    && useradd --system --home /data logrouter && mkdir -p /data && chown logrouter /data
USER logrouter
ENV LOGROUTER_DATA_DIR=/data LOGROUTER_CONFIG=/app/config/docker.toml
VOLUME /data
EXPOSE 6001 8601 8001
STOPSIGNAL SIGTERM
ENTRYPOINT ["logrouter"]
CMD ["serve"]
