/** The local target's weighted reverse proxy, its Prometheus series and its in-process request record. */
export { ServiceProxy, TRACK_HEADER, type RouteTable, type ServiceProxyOptions, type Upstream } from './proxy.js';
export { ProxyMetrics, PROXY_DURATION_BUCKETS, PROXY_GAUGES, serveMetrics, type RequestRecorder } from './metrics.js';
export { ProxyRequestLog, DEFAULT_REQUEST_LOG_LIMITS, type RequestLogLimits } from './request-log.js';
export { TrackSplitter } from './weighted.js';
