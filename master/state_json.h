// state_json: the master's state in the JSON shapes of Apache Mesos's
// read-only endpoints (/master/state, /master/state-summary,
// /master/frameworks, /master/slaves, /master/tasks, /master/flags), so that
// monitoring tools and UIs written for Mesos can poll a Cairn master.
//
// Field names, nesting and value types follow Mesos (src/master/
// readonly_handler.cpp and the json() models of src/common/http.cpp):
//  - "slave", not "agent", in field names (slave_id, slaves, ...);
//  - times are float seconds since the epoch (registered_time: 1.7e9);
//  - resources are "flattened": one entry per resource name summed over
//    roles and reservations, with cpus/gpus/mem/disk always present,
//    scalars as numbers, ranges and sets as Mesos's text
//    ("[31000-31005, 31010-31010]", "{a, b}"), revocable resources under
//    "<name>_revocable";
//  - task states are their enum names ("TASK_RUNNING"), capabilities their
//    type names ("MULTI_ROLE");
//  - protobuf sub-objects (labels, allocation_info, drain_info, full
//    resources) are printed as Mesos's JSON::Protobuf does: proto field
//    names, 64-bit integers as numbers, enums as names, unset optional fields
//    with an explicit default included.
// Cairn-only data never goes into Mesos's objects: /master/state carries it
// under a top-level "cairn" object.
//
// How Cairn's records map onto Mesos's model:
//  - slaves[]: agents in state ACTIVE ("registered" in Mesos); UNREACHABLE
//    agents are only counted (unreachable_slaves), REMOVED ones are omitted.
//    Cairn has no "registered but disconnected" agent, so every listed slave
//    is active and deactivated_slaves is 0; "deactivated" is the operator's
//    (or draining's) deactivation.
//  - frameworks[]: frameworks not COMPLETED; completed_frameworks[]: the
//    COMPLETED ones. A framework's tasks[] are its live tasks except those in
//    TASK_UNREACHABLE (unreachable_tasks[]); completed_tasks[] are its ended,
//    acknowledged tasks. Every Cairn framework is an HTTP framework, so "pid"
//    is omitted, as Mesos does for those.
//  - executors[]: the distinct custom executors (TaskInfo.executor) of the
//    framework's live, non-terminal tasks.
//  - recovered_slaves[], orphan_tasks[] and unregistered_frameworks[] are
//    always empty (as in Mesos >= 1.x for the last two).
//
// Thread safety: pure functions of their arguments; call them from the
// thread that owns the MasterState.

#ifndef CAIRN_MASTER_STATE_JSON_H_
#define CAIRN_MASTER_STATE_JSON_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cairn/v1/mesos.pb.h"
#include "master/resources.h"
#include "master/state.h"

namespace cairn::master {

// Where a master serves HTTP, as Mesos names a master.
struct MasterEndpoint {
  std::string id;
  std::string hostname;
  std::string ip;
  uint16_t port = 0;

  // Mesos's libprocess pid: "master@<ip>:<port>".
  std::string Pid() const;
};

// Cairn's own facts for the "cairn" object of /master/state.
struct CairnStatus {
  // Every master of the cluster, "host:port".
  std::vector<std::string> masters;
  uint64_t log_position = 0;       // every position <= this one is applied
  uint64_t log_begin = 0;          // the first position still in the log
  uint64_t snapshot_position = 0;  // the newest snapshot's position
};

// What /master/state says about the master itself (everything but the
// MasterState).
struct MasterIdentity {
  MasterEndpoint self;
  // The leading master (the same as `self` on the leader); nullopt when no
  // leader is known: then "leader" and "leader_info" are omitted.
  std::optional<MasterEndpoint> leader;
  std::string version;
  // Omitted from the JSON when empty.
  std::string git_sha;
  std::string build_date;
  std::string build_time;
  std::string build_user;
  std::string cluster;
  std::string log_dir;
  std::vector<v1::MasterInfo::Capability::Type> capabilities;
  absl::Time start_time = absl::UnixEpoch();
  // When this master began to lead; nullopt (omitted) when it does not.
  std::optional<absl::Time> elected_time;
  // The master's flags (name -> value as given), for "flags".
  std::map<std::string, std::string> flags;
  CairnStatus cairn;
};

// GET /master/state.
std::string StateJson(const MasterState& state, const MasterIdentity& identity);

// GET /master/state-summary: hostname, cluster (when set), slaves[] (each
// as in /master/state, plus TASK_* counts and framework_ids) and
// frameworks[] (summary fields, TASK_* counts and slave_ids), over the tasks
// of frameworks that are not completed, as Mesos counts them.
std::string StateSummaryJson(const MasterState& state,
                             const MasterIdentity& identity);

// GET /master/frameworks: frameworks, completed_frameworks and
// unregistered_frameworks (empty). With `framework_id`, only that one.
std::string FrameworksJson(
    const MasterState& state,
    const std::optional<std::string>& framework_id = std::nullopt);

// GET /master/slaves: slaves (each as in /master/state plus the
// *_resources_full protobuf lists) and recovered_slaves (empty). With
// `slave_id`, only that one.
std::string SlavesJson(
    const MasterState& state,
    const std::optional<std::string>& slave_id = std::nullopt);

// The query of GET /master/tasks.
struct TasksQuery {
  static constexpr size_t kDefaultLimit = 100;  // Mesos's TASK_LIMIT
  size_t limit = kDefaultLimit;
  size_t offset = 0;
  bool ascending = false;  // ?order=asc; anything else is descending
  std::optional<std::string> framework_id;
  std::optional<std::string> task_id;

  // Reads limit, offset, order, framework_id and task_id from a query. As in
  // Mesos, a missing or malformed limit/offset takes its default; a negative
  // one is malformed here.
  static TasksQuery FromQuery(const std::map<std::string, std::string>& query);
};

// GET /master/tasks: {"tasks": [...]} — the live, unreachable and completed
// tasks of every framework (completed ones included), sorted by their first
// status's timestamp (tasks without statuses first when ascending, last
// when descending), then `offset` skipped and at most `limit` shown.
std::string TasksJson(const MasterState& state, const TasksQuery& query);

// GET /master/flags: {"flags": {name: value, ...}}.
std::string FlagsJson(const std::map<std::string, std::string>& flags);

// Mesos's flattened resources object, e.g.
// {"cpus":4.0,"disk":0.0,"gpus":0.0,"mem":4096.0,"ports":"[31000-31005]"}.
std::string FlattenedResourcesJson(const Resources& resources);

// A JSON body ready to send, as Mesos's OK(json, jsonp) builds it.
struct JsonBody {
  std::string content_type;  // "application/json" or "text/javascript"
  std::string body;
};

// Without ?jsonp=, `json` as application/json; with ?jsonp=callback,
// "callback(<json>)" as text/javascript. Returns kInvalidArgument when the
// callback is not a dotted JavaScript identifier ([A-Za-z_$][A-Za-z0-9_$]*
// separated by '.', at most 256 characters): Mesos echoes it unchecked,
// Cairn refuses anything a browser could run as script.
absl::StatusOr<JsonBody> WrapJsonp(
    std::string json, const std::map<std::string, std::string>& query);

}  // namespace cairn::master

#endif  // CAIRN_MASTER_STATE_JSON_H_
