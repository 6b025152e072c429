#include "monitoring/dashboard.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "monitoring/web_assets.h"

namespace cairn::monitoring {
namespace {

constexpr char kIndex[] = "index.html";

// Scripts and styles only from the page's own origin; data from any master
// (the page reads the other masters when its own is gone).
constexpr char kContentSecurityPolicy[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src *; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'";

absl::string_view ContentType(absl::string_view name) {
  if (absl::EndsWith(name, ".html")) return "text/html; charset=utf-8";
  if (absl::EndsWith(name, ".js")) return "text/javascript; charset=utf-8";
  if (absl::EndsWith(name, ".css")) return "text/css; charset=utf-8";
  if (absl::EndsWith(name, ".svg")) return "image/svg+xml";
  if (absl::EndsWith(name, ".png")) return "image/png";
  return "application/octet-stream";
}

// FNV-1a, 64 bits: a content hash that is the same on every master.
std::string ETagOf(absl::string_view bytes) {
  uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return absl::StrFormat("\"%016x\"", hash);
}

// The asset with its ETag; computed once.
struct Served {
  const WebAsset* asset;
  std::string etag;
};

const std::vector<Served>& ServedAssets() {
  static const std::vector<Served>* served = [] {
    auto* all = new std::vector<Served>;
    for (const WebAsset& asset : WebAssets()) {
      all->push_back({&asset, ETagOf(asset.bytes)});
    }
    return all;
  }();
  return *served;
}

const Served* Find(absl::string_view name) {
  for (const Served& served : ServedAssets()) {
    if (served.asset->name == name) return &served;
  }
  return nullptr;
}

// True when an If-None-Match value names `etag` (or is "*").
bool Matches(absl::string_view if_none_match, absl::string_view etag) {
  for (absl::string_view tag : absl::StrSplit(if_none_match, ',')) {
    tag = absl::StripAsciiWhitespace(tag);
    absl::ConsumePrefix(&tag, "W/");
    if (tag == "*" || tag == etag) return true;
  }
  return false;
}

}  // namespace

http::Response DashboardResponse(const http::Request& request) {
  absl::string_view name;
  if (request.path == "/" || request.path == kDashboardPath) {
    name = kIndex;
  } else if (absl::StartsWith(request.path, kDashboardStaticPrefix)) {
    name = absl::string_view(request.path).substr(
        sizeof(kDashboardStaticPrefix) - 1);
  }
  const Served* served = name.empty() ? nullptr : Find(name);
  // index.html is served only as the page, never under /static/.
  if (served == nullptr ||
      (name == kIndex && absl::StartsWith(request.path, "/static/"))) {
    return http::Response::Error(404,
                                 absl::StrCat("no dashboard file at ",
                                              request.path));
  }
  http::Response response;
  response.headers.Set("Cache-Control", "no-cache");
  response.headers.Set("ETag", served->etag);
  response.headers.Set("X-Content-Type-Options", "nosniff");
  if (const std::string* tags = request.headers.Find("If-None-Match");
      tags != nullptr && Matches(*tags, served->etag)) {
    response.status = 304;
    return response;
  }
  response.status = 200;
  response.headers.Set("Content-Type", ContentType(name));
  if (name == kIndex) {
    response.headers.Set("Content-Security-Policy", kContentSecurityPolicy);
  }
  response.body = std::string(served->asset->bytes);
  return response;
}

void ServeDashboard(http::Server* server) {
  for (const char* path : {"/", kDashboardPath, "/static/*"}) {
    server->HandleSync("GET", path, DashboardResponse);
  }
}

}  // namespace cairn::monitoring
