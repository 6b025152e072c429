// Master: one cairn-master process. Hosts a replica of the replicated log
// (log/replicated_log.h), folds the log into a MasterState, leads when its
// replica leads, and serves HTTP.
//
// Roles (role()):
//   kStandby     the log has another leader (or none): tail the log, keep a
//                warm state; requests for the leader get 307 to it (503 when
//                no leader is known).
//   kRecovering  our replica became the serving leader: fold the log through
//                its end before serving (requests get 503 meanwhile).
//   kLeading     serve: requests go through the CommandPath.
// Losing the log's leadership or a failed append steps down: pending
// requests fail (503), the state is rebuilt from the newest snapshot plus
// the log (fail-stop: nothing speculative survives), and the master tails
// the log as a standby.
//
// Every master folds the same committed entries: a tail thread waits for
// newly learned positions and the master thread reads and applies them
// (leader and standbys alike). Every `snapshot_interval` applied events a
// master writes a snapshot at the position boundary it reached, archives the
// log through it, applies history retention, and — on the leader only —
// truncates the log below the *previous* snapshot's position + 1, so a
// standby has one whole interval to archive those entries before they go.
// Startup recovery is the newest snapshot plus the log after it.
//
// Threads: one master thread owns the MasterState, the CommandPath, the
// snapshot store and the archive; HTTP handlers, log callbacks and the tail
// thread only post work to it. A few atomics (role, applied position) are
// published for handlers that answer without the master thread.

#ifndef CAIRN_MASTER_MASTER_H_
#define CAIRN_MASTER_MASTER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/files_http.h"
#include "common/http_server.h"
#include "log/replicated_log.h"
#include "master/command_path.h"
#include "master/events_api.h"
#include "master/leader.h"
#include "master/operator_api.h"
#include "master/master_metrics.h"
#include "master/state.h"
#include "master/state_json.h"
#include "monitoring/metrics.h"
#include "recovery/archive.h"
#include "recovery/history.h"
#include "recovery/snapshot_fetch.h"
#include "recovery/snapshot_store.h"

namespace cairn::master {

// One entry of --masters: where a master serves HTTP and where its log
// replica listens for peers.
struct MasterAddress {
  std::string host;
  uint16_t port = 0;
  uint16_t log_port = 0;
  std::string ToString() const;  // host:port
};

// The log port of a master whose --masters entry does not name one.
inline constexpr int kLogPortOffset = 1000;

// Parses --masters: comma-separated host:port[/log_port] (log_port defaults
// to port + kLogPortOffset), sorted by (host, port) so that every master
// numbers them alike (log replica id = index + 1). kInvalidArgument for an
// empty list, a malformed item, a duplicate, or a derived port > 65535.
absl::StatusOr<std::vector<MasterAddress>> ParseMasters(absl::string_view text);

struct MasterOptions {
  std::string ip = "127.0.0.1";  // listen address (HTTP and log peers)
  uint16_t port = 5050;
  std::string hostname;  // advertised; default: ip
  std::string cluster;
  std::string work_dir;  // log/, snapshots/, archive/ below it
  std::vector<MasterAddress> masters;
  // This master's log port; 0: as its --masters entry says.
  uint16_t log_port = 0;
  uint64_t snapshot_interval = 10000;  // events between snapshots
  recovery::HistoryRetention retention;
  // The embedded log replica's timing.
  absl::Duration election_timeout = absl::Milliseconds(1500);
  absl::Duration lease = absl::Seconds(1);
  absl::Duration heartbeat_interval = absl::Milliseconds(100);
  int http_threads = 2;
  // The leading master's agent protocol, scheduler API and allocation
  // (LeaderOptions; master_info and seed are filled in by the master).
  LeaderOptions leader;
  // How often the master thread runs Leader::Tick.
  absl::Duration tick_interval = absl::Milliseconds(100);
  // The process's flags (name -> value), served by GET /master/flags and in
  // /master/state's "flags"; "log_dir" there also fills /master/state's.
  std::map<std::string, std::string> flags;
  // POST /api/v1 (master/operator_api.h): event stream bound, heartbeats.
  OperatorApiOptions operator_api;
};

class Master {
 public:
  enum class Role { kStandby, kRecovering, kLeading };

  // Finds this master in options.masters (the entry with options.port and
  // a host equal to ip or hostname, or the only one with options.port),
  // opens the stores, recovers from the newest snapshot, starts the log
  // replica, the HTTP server and the threads. Errors: kInvalidArgument for
  // bad options, the stores' and the log's errors (kUnavailable when a port
  // is taken or the store is locked).
  static absl::StatusOr<std::unique_ptr<Master>> Start(MasterOptions options);

  Master(const Master&) = delete;
  Master& operator=(const Master&) = delete;
  ~Master();

  // Stops HTTP, the log and the threads. Idempotent.
  void Stop();

  uint16_t http_port() const;
  Role role() const { return role_.load(); }

 private:
  class LogAdapter;
  class SourceAdapter;

  explicit Master(MasterOptions options, size_t self_index);

  absl::Status Init();

  // ---- master thread ------------------------------------------------------
  void Post(std::function<void()> work);
  void RunLoop();
  // Folds newly learned entries into state_ and snapshots when due.
  void CatchUp();
  // Resets state_ to the newest snapshot and folds the log after it.
  void Rebuild();
  void OnLeadership(bool leader);
  void StepDown(const absl::Status& why);
  void MaybeSnapshot();
  // Snapshot transfer (recovery/snapshot_fetch.h): when the log begins after
  // applied_ + 1, starts fetching a peer master's snapshot that covers the
  // gap, unless one is in progress or the last failed recently (backoff).
  void MaybeFetchSnapshot();
  // The fetch's result, on the master thread: installs the snapshot in the
  // store and rebuilds from it (only as a standby, and only if it is newer
  // than applied_).
  void OnSnapshotFetched(absl::StatusOr<recovery::FetchedSnapshot> fetched);

  // ---- tail thread --------------------------------------------------------
  void TailLoop();

  // ---- HTTP ---------------------------------------------------------------
  void RegisterRoutes();
  // Answers now when this master cannot serve `request` as the leader (307
  // to the leader or 503); returns false when it may (the leader).
  bool RedirectUnlessLeading(const http::Request& request,
                             const std::shared_ptr<http::Responder>& r);
  std::optional<MasterAddress> KnownLeader() const;
  void HandleRedirect(const http::Request& request,
                      std::shared_ptr<http::Responder> r);
  void HandleReplica(std::shared_ptr<http::Responder> r);
  // GET /master/snapshot: this master's newest snapshot, for a peer.
  void HandleSnapshot(const http::Request& request,
                      std::shared_ptr<http::Responder> r);
  // POST /api/v1: the Mesos v1 operator API (master/operator_api.h).
  void HandleApi(http::Request request, std::shared_ptr<http::Responder> r);
  // POST /api/v1/agent (docs/agent-protocol.md) and /api/v1/scheduler
  // (Mesos v1): parse, then hand to the Leader on the master thread.
  void HandleAgentApi(http::Request request,
                      std::shared_ptr<http::Responder> r);
  void HandleSchedulerApi(http::Request request,
                          std::shared_ptr<http::Responder> r);

  // ---- ticker thread ------------------------------------------------------
  void TickLoop();

  const MasterOptions options_;
  const size_t self_index_;  // into options_.masters

  // ---- metrics (master/master_metrics.h) ---------------------------------
  // GET /metrics/snapshot and GET /metrics on every master. Declared before
  // the log and the threads so that it outlives them; scrapes (HTTP
  // threads) end when http_ stops.
  // Creates metrics_ and hooks it to the fold (before the first Rebuild).
  void InitMetrics();
  // Master thread: refreshes the state gauges (called on every tick).
  void PublishMetrics();
  monitoring::Registry metrics_registry_;
  std::unique_ptr<MasterMetrics> metrics_;
  // ---- end of metrics -----------------------------------------------------

  std::unique_ptr<log::ReplicatedLog> log_;
  std::unique_ptr<LogAdapter> log_adapter_;
  std::unique_ptr<SourceAdapter> source_adapter_;
  std::unique_ptr<recovery::SnapshotStore> snapshots_;
  std::unique_ptr<recovery::Archive> archive_;
  std::unique_ptr<recovery::History> history_;
  std::unique_ptr<http::Server> http_;
  // /files/*: the log directory as /master/log (when --log_dir is set).
  files::FilesService files_;

  // Master thread only.
  MasterState state_;
  uint64_t applied_ = 0;  // every position <= applied_ is in state_
  absl::Time last_event_time_ = absl::InfinitePast();
  uint64_t events_since_snapshot_ = 0;
  uint64_t last_snapshot_ = 0;  // position of the newest snapshot written
  uint64_t previous_snapshot_ = 0;
  absl::Time last_fold_error_ = absl::InfinitePast();  // rate-limits a log
  bool log_leader_ = false;  // the log's latest notification said so
  // Snapshot transfer: no fetch starts before next_snapshot_fetch_; the
  // backoff doubles after each failed fetch and resets after a success.
  absl::Time next_snapshot_fetch_ = absl::InfinitePast();
  absl::Duration snapshot_fetch_backoff_ = absl::Milliseconds(250);
  std::unique_ptr<CommandPath> commands_;
  std::unique_ptr<Leader> leader_;  // while role_ is kLeading
  // POST /api/v1; created in Init(), master thread only.
  std::unique_ptr<OperatorApi> operator_api_;
  // Master thread only; registered in Init() before any thread starts.
  // Called for every event folded into state_ (on every role), right after
  // Apply, with state_ already including it.
  std::vector<std::function<void(const v1::Event&)>> applied_observers_;
  // Called when this master stops leading (after the Leader is gone).
  std::vector<std::function<void()>> stepdown_observers_;

  std::atomic<Role> role_{Role::kStandby};
  std::atomic<uint64_t> applied_published_{0};

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;  // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_
  bool catch_up_posted_ = false;             // guarded by mu_
  bool tick_posted_ = false;                 // guarded by mu_
  std::thread master_thread_;
  std::thread tail_thread_;
  std::thread tick_thread_;
  std::once_flag stop_once_;

  // ---- Mesos's read-only endpoints (master/state_json.h) --------------------
  enum class ReadOnlyEndpoint {
    kState,         // GET /master/state, /master/state.json
    kStateSummary,  // GET /master/state-summary
    kFrameworks,    // GET /master/frameworks
    kSlaves,        // GET /master/slaves
    kTasks,         // GET /master/tasks, /master/tasks.json
  };
  // Leader only (the route redirects first): renders `endpoint` from state_
  // on the master thread; 503 when no longer leading, 400 for a bad ?jsonp.
  void HandleReadOnly(ReadOnlyEndpoint endpoint, const http::Request& request,
                      std::shared_ptr<http::Responder> r);
  // GET /master/flags: this master's own flags, on any master (as in Mesos).
  void HandleFlags(const http::Request& request,
                   std::shared_ptr<http::Responder> r);
  // Master thread: records the MasterInfo and time of an election.
  void OnElected(const v1::MasterInfo& info);
  // Master thread: what /master/state says about this master.
  MasterIdentity Identity() const;
  const absl::Time start_time_ = absl::Now();
  absl::Time elected_time_ = absl::InfinitePast();  // master thread only
  v1::MasterInfo elected_info_;                     // master thread only
  // ---- end of the read-only endpoints' block ----------------------------

  // Created by the first MaybeFetchSnapshot(). Declared last so that it is
  // destroyed first (joining its thread) while mu_ and queue_, which its
  // callback posts to, still exist.
  std::unique_ptr<recovery::SnapshotFetcher> snapshot_fetcher_;
  // GET /api/v1/events. Destroyed before the rest (joining its streams'
  // threads, which post to mu_/queue_); its source reads archive_ and the
  // log only in work run on the master thread, joined by Stop() before.
  std::unique_ptr<EventsApi> events_api_;
};

}  // namespace cairn::master

#endif  // CAIRN_MASTER_MASTER_H_
