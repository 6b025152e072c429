#include "monitoring/metrics_http.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace cairn::monitoring {

namespace {

bool IsIdentifier(absl::string_view part) {
  if (part.empty()) return false;
  for (size_t i = 0; i < part.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(part[i]);
    const bool ok = absl::ascii_isalpha(c) || c == '_' || c == '$' ||
                    (i > 0 && absl::ascii_isdigit(c));
    if (!ok) return false;
  }
  return true;
}

bool IsCallbackName(absl::string_view name) {
  if (name.empty() || name.size() > 256) return false;
  for (absl::string_view part : absl::StrSplit(name, '.')) {
    if (!IsIdentifier(part)) return false;
  }
  return true;
}

}  // namespace

http::Response SnapshotResponse(const Registry& registry,
                                const http::Request& request) {
  auto jsonp = request.query.find("jsonp");
  if (jsonp == request.query.end()) {
    return http::Response::Json(200, registry.Snapshot());
  }
  if (!IsCallbackName(jsonp->second)) {
    return http::Response::Error(
        400,
        "jsonp must name a JavaScript function (letters, digits, _, $, .)");
  }
  http::Response response;
  response.status = 200;
  response.headers.Set("Content-Type", "text/javascript");
  response.body = absl::StrCat(jsonp->second, "(", registry.Snapshot(), ");");
  return response;
}

http::Response PrometheusResponse(const Registry& registry) {
  http::Response response;
  response.status = 200;
  response.headers.Set("Content-Type", kPrometheusContentType);
  response.body = registry.Prometheus();
  return response;
}

void ServeMetrics(http::Server* server, const Registry* registry) {
  server->HandleSync("GET", kSnapshotPath,
                     [registry](const http::Request& request) {
                       return SnapshotResponse(*registry, request);
                     });
  server->HandleSync("GET", kPrometheusPath, [registry](const http::Request&) {
    return PrometheusResponse(*registry);
  });
}

}  // namespace cairn::monitoring
