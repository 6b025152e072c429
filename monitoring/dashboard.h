// The operator's dashboard, served by every master (leader or standby):
//
//   GET /  and  GET /dashboard    index.html
//   GET /static/<name>            the page's script and style sheet
//
// The files are compiled into the binary (web_assets.h); the page loads
// nothing from elsewhere (its Content-Security-Policy allows only its own
// scripts and styles) and reads the masters' JSON endpoints from the
// browser: /master/state (any master: a standby answers 307 to the leader),
// /master/replica of every master, and the history API's event stream
// (GET /api/v1/events as Server-Sent Events). It follows the leader on a
// failover by asking the other masters. monitoring/web/README.md describes
// the page.
//
// Answers carry Cache-Control: no-cache and an ETag (the content's hash), so
// a browser revalidates with If-None-Match (304) and never runs a stale
// script after an upgrade.
//
// Thread safety: the functions are pure over static data; handlers may run
// on any thread.

#ifndef CAIRN_MONITORING_DASHBOARD_H_
#define CAIRN_MONITORING_DASHBOARD_H_

#include "common/http_message.h"
#include "common/http_server.h"

namespace cairn::monitoring {

inline constexpr char kDashboardPath[] = "/dashboard";
inline constexpr char kDashboardStaticPrefix[] = "/static/";

// The answer to a GET (or HEAD) of `request.path`: 200 with the file, its
// Content-Type, Cache-Control and ETag; 304 when If-None-Match names the
// current ETag; 404 {"error"} naming the path for anything else.
http::Response DashboardResponse(const http::Request& request);

// Routes GET /, /dashboard and /static/* of `server` to
// DashboardResponse().
void ServeDashboard(http::Server* server);

}  // namespace cairn::monitoring

#endif  // CAIRN_MONITORING_DASHBOARD_H_
