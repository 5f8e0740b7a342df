FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY logrouter ./logrouter
COPY drains ./drains
COPY config ./config
RUN pip install --no-cache-dir . && useradd --system --home /data logrouter \
    && mkdir -p /data && chown logrouter /data
USER logrouter
ENV LOGROUTER_DATA_DIR=/data
VOLUME /data
EXPOSE 6001 8601 8001
STOPSIGNAL SIGTERM
ENTRYPOINT ["logrouter"]
CMD ["serve"]
