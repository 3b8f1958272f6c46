# A stand-in for the official RabbitMQ image, built from Debian's package where no registry
# is reachable. It honours the same environment: RABBITMQ_DEFAULT_USER/PASS become the only
# user, who may connect from other containers (the official image's defaults).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update \
    && apt-get install --yes --no-install-recommends rabbitmq-server \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /etc/rabbitmq/conf.d /var/lib/rabbitmq /var/log/rabbitmq \
    && printf 'loopback_users.guest = false\nlisteners.tcp.default = 5672\n' \
       > /etc/rabbitmq/conf.d/10-defaults.conf \
    && chown -R rabbitmq:rabbitmq /etc/rabbitmq /var/lib/rabbitmq /var/log/rabbitmq
COPY rabbitmq-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
# Debian's /usr/sbin wrappers send the log to a file and do not pass SIGTERM on: use the
# scripts they wrap, as the official image does.
ENV PATH=/usr/lib/rabbitmq/bin:$PATH RABBITMQ_LOGS=- HOME=/var/lib/rabbitmq
USER rabbitmq
EXPOSE 5672
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["rabbitmq-server"]
