#include "monitoring/dashboard.h"

#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/http_message.h"
#include "gtest/gtest.h"
#include "monitoring/web_assets.h"
#include "tools/cpp/runfiles/runfiles.h"

namespace cairn::monitoring {
namespace {

using bazel::tools::cpp::runfiles::Runfiles;

http::Response Get(const std::string& path, const std::string& if_none_match = "") {
  http::Request request;
  request.method = "GET";
  request.path = path;
  request.target = path;
  if (!if_none_match.empty()) request.headers.Set("If-None-Match", if_none_match);
  return DashboardResponse(request);
}

TEST(DashboardTest, EmbedsEachFileOfMonitoringWebByteForByte) {
  std::string error;
  std::unique_ptr<Runfiles> runfiles(Runfiles::CreateForTest(&error));
  ASSERT_NE(runfiles, nullptr) << error;
  ASSERT_EQ(WebAssets().size(), 3u);
  for (const char* name : {"index.html", "app.js", "style.css"}) {
    std::ifstream in(runfiles->Rlocation(
                         absl::StrCat("cairn/monitoring/web/", name)),
                     std::ios::binary);
    ASSERT_TRUE(in) << name;
    std::stringstream file;
    file << in.rdbuf();
    bool found = false;
    for (const WebAsset& asset : WebAssets()) {
      if (asset.name != name) continue;
      found = true;
      EXPECT_EQ(asset.bytes, file.str()) << name;
    }
    EXPECT_TRUE(found) << name;
  }
}

TEST(DashboardTest, ServesThePageAtRootAndDashboardWithItsHeaders) {
  for (const char* path : {"/", "/dashboard"}) {
    http::Response r = Get(path);
    EXPECT_EQ(r.status, 200) << path;
    EXPECT_EQ(r.headers.Get("Content-Type"), "text/html; charset=utf-8");
    EXPECT_EQ(r.headers.Get("Cache-Control"), "no-cache");
    EXPECT_EQ(r.headers.Get("X-Content-Type-Options"), "nosniff");
    EXPECT_TRUE(absl::StrContains(r.headers.Get("Content-Security-Policy"),
                                  "script-src 'self'"));
    EXPECT_TRUE(absl::StartsWith(r.body, "<!doctype html>")) << r.body;
  }
}

TEST(DashboardTest, ServesTheScriptAndStyleTheirContentTypes) {
  http::Response js = Get("/static/app.js");
  EXPECT_EQ(js.status, 200);
  EXPECT_EQ(js.headers.Get("Content-Type"), "text/javascript; charset=utf-8");
  EXPECT_TRUE(absl::StrContains(js.body, "EventSource"));
  http::Response css = Get("/static/style.css");
  EXPECT_EQ(css.status, 200);
  EXPECT_EQ(css.headers.Get("Content-Type"), "text/css; charset=utf-8");
  EXPECT_FALSE(css.headers.Has("Content-Security-Policy"));
}

TEST(DashboardTest, PageLoadsOnlyItsOwnFiles) {
  const std::string page = Get("/").body;
  for (const char* ref : {"src=\"/static/app.js\"", "href=\"/static/style.css\""}) {
    EXPECT_TRUE(absl::StrContains(page, ref)) << ref;
  }
  // No script, style or font from anywhere else.
  for (const char* external : {"src=\"http", "href=\"http", "src=\"//",
                               "href=\"//", "@import", "url(http"}) {
    EXPECT_FALSE(absl::StrContains(page, external)) << external;
    EXPECT_FALSE(absl::StrContains(Get("/static/style.css").body, external))
        << external;
  }
}

TEST(DashboardTest, MatchingIfNoneMatchGets304WithoutBody) {
  http::Response first = Get("/static/app.js");
  const std::string etag = first.headers.Get("ETag");
  ASSERT_EQ(etag.size(), 18u) << etag;  // "<16 hex digits>"
  EXPECT_EQ(Get("/static/app.js").headers.Get("ETag"), etag);  // stable
  EXPECT_NE(Get("/static/style.css").headers.Get("ETag"), etag);

  http::Response again = Get("/static/app.js", etag);
  EXPECT_EQ(again.status, 304);
  EXPECT_TRUE(again.body.empty());
  EXPECT_EQ(again.headers.Get("ETag"), etag);
  EXPECT_EQ(Get("/static/app.js", absl::StrCat("\"x\", W/", etag)).status,
            304);
  EXPECT_EQ(Get("/static/app.js", "\"0000000000000000\"").status, 200);
}

TEST(DashboardTest, UnknownFilesAre404NamingThePath) {
  for (const char* path : {"/static/nope.js", "/static/", "/static/index.html",
                           "/static/../app.js", "/dashboard/x"}) {
    http::Response r = Get(path);
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_TRUE(absl::StrContains(r.body, path)) << r.body;
  }
}

}  // namespace
}  // namespace cairn::monitoring
