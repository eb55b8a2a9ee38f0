# Sluice container image: build stage on Debian 12 with the same packages as
# scripts/install-deps.sh, runtime stage with only the shared libraries Sluice links.
#   docker build -t sluice .
#   docker run --rm -p 6033:6033 -p 6090:6090 -v $PWD/sluice.toml:/etc/sluice/sluice.toml:ro sluice
# In the image, listeners and admin must bind 0.0.0.0 to be reachable from outside the
# container (the sample config binds 127.0.0.1, right for a sidecar sharing the pod's network).

FROM debian:12 AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      cmake ninja-build g++ pkg-config ca-certificates \
      libboost1.81-dev libssl-dev libmariadb-dev freetds-dev libhiredis-dev libspdlog-dev \
      prometheus-cpp-dev libtomlplusplus-dev catch2 libre2-dev libxxhash-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY include include
COPY protocol protocol
COPY router router
COPY pool pool
COPY cache cache
COPY config config
COPY src src
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DSLUICE_TESTS=OFF \
 && ninja -C /build sluice \
 && strip /build/src/sluice

FROM debian:12-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libssl3 libspdlog1.10 libfmt9 libprometheus-cpp-core1.0 libtomlplusplus3 libre2-9 \
      libxxhash0 libmariadb3 \
      ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system sluice \
 && useradd --system --gid sluice --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin sluice \
 && mkdir -p /etc/sluice
COPY --from=build /build/src/sluice /usr/local/bin/sluice
COPY sluice.example.toml /etc/sluice/sluice.toml
USER sluice:sluice
EXPOSE 6033 6090
# Sluice validates the file before it starts; a bad file exits 2 with file:line: key: reason.
ENTRYPOINT ["/usr/local/bin/sluice"]
CMD ["--config", "/etc/sluice/sluice.toml"]
STOPSIGNAL SIGTERM
