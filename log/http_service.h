// The replicated log's client API over HTTP, served by each replica (routes
// on a common/http_server). Reference: docs/log.md would be the long form;
// this header is the contract.
//
//   POST /log/append            body = the entry's bytes
//     200 {"position": "17", "index": 0}   once chosen (durable on a quorum)
//     307 Location: http://<leader>/log/append   this replica does not lead
//         and knows the leader's HTTP address (nothing was appended)
//     503 {"error": "...", "leader": 2|null}      no serving leader here or
//         known (nothing was appended; retry, Retry-After: 1)
//     503 {"error": "...", "outcome": "unknown"}  leadership was lost while
//         the entry was in flight: it may or may not be in the log
//   GET /log/read?from=F&to=T&limit=N
//     200 [{"position": "5", "index": 0, "data": "<base64>"}, ...]
//         the learned entries of positions [F, min(T, learned_through)], at
//         most N positions (default 1000, at most 10000); F defaults to the
//         first retained position, T to learned_through. Headers:
//         X-Cairn-Next-Position (continue from there),
//         X-Cairn-Learned-Through. Followers answer from what they learned.
//     400 bad or out-of-range parameters (truncated positions name `begin`)
//   GET /log/status    200 the replica's LogServerStatus, see StatusJson()
//   POST /log/truncate?to=P
//     200 {"position": "42", "to": "P"}  once the truncate entry is chosen
//     307 / 503 as for append; 400 when `to` is missing or not a number;
//     409 when P is beyond the chosen prefix + 1
//   GET /health        200 {"healthy": true, ...} while the replica runs,
//                      503 once it has stopped
//
// Every error body is JSON {"error": "<what went wrong>"} (plus the fields
// above). 64-bit numbers (positions, counters) are JSON strings, as in
// proto3's JSON mapping; small numbers (ids, indexes, milliseconds) are JSON
// numbers.
//
// Thread safety: the routes call the ReplicatedLog, which is thread-safe.

#ifndef CAIRN_LOG_HTTP_SERVICE_H_
#define CAIRN_LOG_HTTP_SERVICE_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "common/http_server.h"
#include "log/replicated_log.h"
#include "log/server.h"

namespace cairn::log {

struct LogHttpOptions {
  // Every replica's HTTP address ("host:port"), for redirects to the leader.
  std::map<uint32_t, std::string> http_addresses;
  size_t default_read_positions = 1000;
  size_t max_read_positions = 10000;
};

// Registers the routes above on `server`. `log` must outlive the server's
// handlers (stop the server before destroying the log).
void RegisterLogRoutes(ReplicatedLog* log, LogHttpOptions options,
                       http::Server* server);

// The /log/status document:
//   {"id": 1, "running": true, "status": "VOTING", "status_detail": "",
//    "role": "leader", "serving": true, "leader": 1 (or null),
//    "promised": {"round": "3", "node_id": 1}, "ballot": {...},
//    "begin": "1", "end": "250", "learned_through": "250",
//    "known_committed": "250", "committed": "250", "in_flight": 0,
//    "queued": 0, "lease_remaining_ms": 180, "elections_won": "1",
//    "votes_sent": "731", "bytes_on_disk": "81234",
//    "counters": {"votes_sent": "731", "appends_requested": "200",
//                 "appends_ok": "200", "appends_failed": "0",
//                 "truncates_requested": "0", "fetches_sent": "0",
//                 "fetches_served": "2", "reads": "1",
//                 "messages_received": "...", "messages_sent": "...",
//                 "messages_dropped": "0", "writes": "...",
//                 "synced_writes": "...", "inputs": "..."},
//    "transport": {"messages_sent": "...", "messages_received": "...",
//                  "bytes_sent": "...", "bytes_received": "...",
//                  "dropped_queue_full": "0", "dropped_on_error": "0",
//                  "dropped_unknown_peer": "0", "connects": "2",
//                  "connect_failures": "0", "bad_frames": "0",
//                  "inbound_connections": "2", "queued": "0"}}
std::string StatusJson(const LogServerStatus& status);

// The HTTP status for an error of the log API: kInvalidArgument and
// kOutOfRange 400, kNotFound 404, kFailedPrecondition 409, kUnavailable 503,
// kDeadlineExceeded 504, anything else 500.
int HttpStatusFor(const absl::Status& status);

}  // namespace cairn::log

#endif  // CAIRN_LOG_HTTP_SERVICE_H_
