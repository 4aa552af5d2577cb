# The standalone fake registry as an image (docs/containers.md).
#
#   docker build -t aio-registry-fake .
#   docker run --rm -p 127.0.0.1:50051:50051 aio-registry-fake --client ci-key:ci-secret
#
# Arguments after the image name are fake-registry flags (docs/standalone.md);
# the fake always listens on 0.0.0.0:50051 inside the container.
#
# Build arguments:
#   BASE_IMAGE  any image with python3 (3.11 or later) and its venv module;
#               default: the official slim Python image.
#   WHEELHOUSE  a directory of the build context holding the project's wheel and
#               every dependency's (pip download ...): when it holds the project's
#               wheel, the build installs from it alone, with no network. Otherwise
#               the project is built from the context and its dependencies come
#               from the package index.

ARG BASE_IMAGE=python:3.12-slim

FROM ${BASE_IMAGE} AS build
ARG WHEELHOUSE=wheelhouse
LABEL org.opencontainers.image.title="aio-registry-fake-build"
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY . /src
RUN python3 -m venv /opt/fake-registry \
 && if ls "/src/${WHEELHOUSE}"/aio_registry_sdk-*.whl > /dev/null 2>&1; then \
        /opt/fake-registry/bin/pip install --no-index --find-links "/src/${WHEELHOUSE}" \
            "aio-registry-sdk[testing]"; \
    else \
        /opt/fake-registry/bin/pip install "/src[testing]"; \
    fi \
 && /opt/fake-registry/bin/fake-registry --version

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="aio-registry-fake" \
      org.opencontainers.image.description="In-memory gRPC fake of the AIO service registry and its client-auth server"
COPY --from=build /opt/fake-registry /opt/fake-registry
RUN useradd --user-group --uid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin fake-registry
ENV PATH=/opt/fake-registry/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
USER fake-registry:fake-registry
WORKDIR /tmp
EXPOSE 50051
# Health/Check needs no token. With --tls, give the check the CA: override it with
# docker run --health-cmd "fake-registry health --target localhost:50051 --tls-ca FILE".
HEALTHCHECK --interval=5s --timeout=5s --start-period=10s --retries=3 \
    CMD ["fake-registry", "health", "--target", "127.0.0.1:50051"]
# 0.0.0.0 so the published port reaches it; --allow-remote because that is not
# loopback. Whoever reaches the port can drive the control service: publish it on
# 127.0.0.1, or set FAKE_REGISTRY_CONTROL_TOKEN (docker run -e ...).
ENTRYPOINT ["fake-registry", "--host", "0.0.0.0", "--allow-remote", "--port", "50051"]
