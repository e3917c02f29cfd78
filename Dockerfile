# rouse on Debian 12: the `rouse` binary built from this tree, in an image
# with only the runtime libraries it links. Build and run:
#
#   docker build -t rouse:0.1.0 .
#   docker run --rm -p 8080:8080 rouse:0.1.0
#
# deploy/kubernetes/ runs it as several nodes on PostgreSQL and NATS
# (docs/scale-out.md). tests/deploy/test_deploy.py checks this file against
# the binary (the libraries it links, its flags and port) without building it.

FROM debian:12 AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gcc make cmake ninja-build pkg-config libssl-dev libdnnl-dev libmicrohttpd-dev \
      libsqlite3-dev libcurl4-openssl-dev libyaml-dev libgnutls28-dev libseccomp-dev \
      libpq-dev libnats-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DROUSE_BUILD_TESTS=OFF \
 && cmake --build build --target rouse

FROM debian:12
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates libcurl4 libdnnl2 libgnutls30 libgomp1 libmicrohttpd12 libnats3.4 \
      libpq5 libseccomp2 libsqlite3-0 libssl3 libyaml-0-2 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/rouse /usr/local/bin/rouse
# The data directory: the local registry (a replica with --state), blobs
# and compiled plans. A volume, so that a restarted container keeps its
# blobs and plans instead of fetching them again.
VOLUME /var/lib/rouse
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/rouse"]
CMD ["serve", "--bind", "0.0.0.0", "--port", "8080", "--data", "/var/lib/rouse", "--auth"]
