// The HTTP face of a metrics Registry (monitoring/metrics.h), the same on
// every Cairn process that serves HTTP (masters, agents):
//
//   GET /metrics/snapshot         the flat JSON snapshot (Mesos key names);
//                                 with ?jsonp=cb the body is `cb(<json>);`
//                                 as text/javascript, as Mesos answers it.
//   GET /metrics                  Prometheus text exposition 0.0.4.
//
// Scrapes run on the HTTP server's threads (see the Registry's notes on
// callbacks and scrape hooks).

#ifndef CAIRN_MONITORING_METRICS_HTTP_H_
#define CAIRN_MONITORING_METRICS_HTTP_H_

#include "common/http_message.h"
#include "common/http_server.h"
#include "monitoring/metrics.h"

namespace cairn::monitoring {

inline constexpr char kSnapshotPath[] = "/metrics/snapshot";
inline constexpr char kPrometheusPath[] = "/metrics";
// The Content-Type of the Prometheus text format.
inline constexpr char kPrometheusContentType[] =
    "text/plain; version=0.0.4; charset=utf-8";

// The answer to GET /metrics/snapshot: 200 with the JSON, or the JSONP
// form for ?jsonp=<callback>; 400 when the callback is not a JavaScript
// identifier path ([A-Za-z_$][A-Za-z0-9_$]* joined by '.'), which keeps
// the answer from carrying arbitrary script.
http::Response SnapshotResponse(const Registry& registry,
                                const http::Request& request);
// The answer to GET /metrics: 200 with the Prometheus text.
http::Response PrometheusResponse(const Registry& registry);

// Routes both paths of `server` to `registry`. REQUIRES: `registry`
// outlives the server's handlers (stop the server first).
void ServeMetrics(http::Server* server, const Registry* registry);

}  // namespace cairn::monitoring

#endif  // CAIRN_MONITORING_METRICS_HTTP_H_
