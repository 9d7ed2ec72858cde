# syntax=docker/dockerfile:1.7
# Slipway: a small production image (multi-stage, non-root, Node LTS).
#   docker build -t slipway:dev .
#   docker run --rm slipway:dev --help
# The controller Deployment in deploy/ runs `slipway controller`; builder Jobs run `slipway build`.
# Pin the base by digest when releasing (docker buildx imagetools inspect node:24-bookworm-slim).
ARG NODE_IMAGE=node:24-bookworm-slim

# ---- build: compile TypeScript to dist/ with the full dev toolchain ----
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm install --no-audit --no-fund --ignore-scripts
# Sources only (.dockerignore keeps tests, benches, node_modules and git out of the context).
COPY . .
RUN npm run build

# ---- deps: production dependencies only ----
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm install --omit=dev --no-audit --no-fund --ignore-scripts && npm cache clean --force

# ---- runtime ----
FROM ${NODE_IMAGE} AS runtime
# git: interop with environments repositories over ssh/https credential helpers; tini: PID 1 that reaps children
# (builder pipelines spawn processes). Nothing else: no compilers, no package manager caches.
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && rm -rf /usr/local/lib/node_modules/npm /usr/local/bin/npm /usr/local/bin/npx /opt/yarn* /usr/local/bin/yarn*
ENV NODE_ENV=production \
    SLIPWAY_HOME=/var/lib/slipway
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY deploy/builder-job.yaml ./deploy/builder-job.yaml
# slipway init copies the example environments repository.
COPY environments ./environments
# The image's own `node` user (uid/gid 1000); numeric so runAsNonRoot can verify it.
RUN mkdir -p /var/lib/slipway && chown 1000:1000 /var/lib/slipway
USER 1000:1000
EXPOSE 8080
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/bin/slipway.js"]
CMD ["--help"]
