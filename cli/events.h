// `cairnctl events`: the history API (GET /api/v1/events, docs/history-api.md)
// as one line per event, or JSON lines.
//
// Any master serves the history from its own fold, so events does not need
// the leader: it asks the masters in turn. Without --follow it first reads
// the serving master's applied position (/master/replica) and streams
// from..that position; with --follow it streams on, live. When the stream
// ends early (the master died or stepped down, slow_client) it reconnects
// to the next master with Last-Event-ID = the last event printed, so
// nothing is missed or printed twice. A `lost` end (positions no longer
// retained there) is reported and the stream goes on from `resume_from`.
//
// Thread safety: one thread.

#ifndef CAIRN_CLI_EVENTS_H_
#define CAIRN_CLI_EVENTS_H_

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

#include "cairn/v1/master.pb.h"
#include "cli/cluster.h"

namespace cairn::cli {

struct EventsOptions {
  std::optional<uint64_t> from;  // absent: 0 without --follow, live with it
  bool follow = false;
  std::string types;         // comma-separated event types
  std::string agent_id, framework_id, task_id;
  std::optional<uint64_t> limit;
  bool json = false;
};

// Returns the exit code: 0 when the stream ended as asked, 1 for an error
// answer (64 for a 400: a bad filter), 2 when no master answered.
int StreamEvents(Cluster& cluster, const EventsOptions& options,
                 std::ostream& out, std::ostream& err);

// "position:index  time  type  principal  summary" for one event.
std::string EventLine(const v1::Event& event);

// The event's type as the API names it ("task_status_updated"), or "unknown".
std::string EventTypeName(const v1::Event& event);

}  // namespace cairn::cli

#endif  // CAIRN_CLI_EVENTS_H_
