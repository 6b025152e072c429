// The dashboard's files (monitoring/web/), compiled into the binary: the
// genrule //monitoring:web_assets_cc runs embed_assets.cc over them, so a
// master serves its dashboard with no file next to it and no network fetch.
// monitoring/dashboard.h serves them over HTTP.
//
// Thread safety: immutable static data.

#ifndef CAIRN_MONITORING_WEB_ASSETS_H_
#define CAIRN_MONITORING_WEB_ASSETS_H_

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace cairn::monitoring {

struct WebAsset {
  absl::string_view name;   // the file's base name: "index.html", "app.js"
  absl::string_view bytes;  // its exact contents
};

// Every embedded file, in the order the genrule lists them. The views point
// to static storage.
absl::Span<const WebAsset> WebAssets();

}  // namespace cairn::monitoring

#endif  // CAIRN_MONITORING_WEB_ASSETS_H_
