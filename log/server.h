// LogServer: one replica of the replicated log, running in a process. The
// adapter between the sans-IO protocol core (Node, see node.h and types.h)
// and the real world: it owns the replica's LevelDbStorage, its Node and
// the TCP Transport to the other replicas, and it carries out every Effects
// the Node returns.
//
// Threads (docs/log.md, ARCHITECTURE §8): ONE node thread owns the Node and
// the Storage; nothing else touches them, so the core needs no locks. The
// node thread is the Transport's I/O thread: a peer message is parsed,
// handled and answered (its frames written to the socket) on the thread that
// read it, with no hand-off between threads. Appends, truncates and reads
// from other threads go into a mailbox, and the I/O thread is woken to
// drain it; a tick every `tick_interval` is a timer on the same thread.
// Inputs are handled in rounds (everything received since the last round)
// and for each Effects:
//   1. writes `effects.write` to storage (fsync when `effects.sync`); a
//      failed write CHECK-crashes the process: an acceptor that cannot
//      persist must stop, never answer;
//   2. sends `effects.messages` (those addressed to itself re-enter its own
//      mailbox), then
//   3. runs append/truncate callbacks and leadership notifications.
// One exception to "self-addressed messages re-enter the mailbox": the
// LearnedMessage our proposer sends our own replica is handled within the
// same Effects, before its write, so that an append completes only once this
// replica has learned it (Read() right after a successful Append sees it).
//
// Group commit: within one round, the Effects of consecutive inputs whose
// handling does not read storage (AcceptRequest, LearnedMessage, Heartbeat,
// the proposer's responses, fetch/recover responses, appends, ticks) are
// merged and carried out once: one (synced) write, then all their messages
// and callbacks. Before an input that reads storage (PromiseRequest,
// FetchRequest, RecoverRequest, a client Read) the merged Effects are
// flushed, so the read sees every earlier write. Nothing of a merged group is
// sent or acknowledged before its write is durable.
//
// Thread safety: every public method is thread-safe. Callbacks (append,
// truncate, leadership, status observer) run on the node thread, after the
// write they depend on is durable; they must not block (that would stall
// the transport as well), and must not call Stop(). They may call
// Append/Truncate/Read/GetStatus (Read runs inline when called from the
// node thread).
//
// Time: the core is given a monotonic clock (steady_clock since an arbitrary
// epoch, as absl::Time); such values mean nothing outside this process.

#ifndef CAIRN_LOG_SERVER_H_
#define CAIRN_LOG_SERVER_H_

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "log/leveldb_storage.h"
#include "log/node.h"
#include "log/transport.h"
#include "log/types.h"

namespace cairn::log {

struct LogServerOptions {
  // The protocol configuration: node_id, replicas (every replica's id,
  // including node_id) and the timeouts.
  Config config;
  // LevelDB directory of this replica (created when missing).
  std::string dir;
  LevelDbStorageOptions storage;

  // Where to accept peers' connections (port 0: ephemeral, see peer_port()).
  std::string listen_address = "127.0.0.1";
  uint16_t peer_port = 0;
  // The other replicas' peer addresses; may be completed later with
  // SetPeerAddress().
  std::map<uint32_t, PeerAddress> peers;
  size_t max_frame_bytes = 64 << 20;
  size_t max_queued_messages_per_peer = 8192;

  // How often Node::Tick runs.
  absl::Duration tick_interval = absl::Milliseconds(5);
  // Merge the Effects of consecutive storage-free inputs (see above). Off:
  // every input's Effects are carried out on their own.
  bool group_commit = true;
  // Peer messages waiting for the node thread beyond which new ones are
  // dropped (counted); bounds memory when the disk stalls.
  size_t max_mailbox_messages = 100000;
};

// Monotonic counters since Start().
struct LogServerCounters {
  uint64_t votes_sent = 0;  // PromiseResponse and AcceptResponse messages
  uint64_t appends_requested = 0;
  uint64_t appends_ok = 0;
  uint64_t appends_failed = 0;
  uint64_t truncates_requested = 0;
  uint64_t fetches_sent = 0;       // FetchRequests (catch-up / recovery)
  uint64_t fetches_served = 0;     // FetchRequests answered
  uint64_t reads = 0;              // client Read() calls served
  uint64_t messages_received = 0;  // from peers and from itself
  uint64_t messages_sent = 0;      // to peers and to itself
  uint64_t messages_dropped = 0;   // mailbox full
  uint64_t writes = 0;             // Storage::Write calls
  uint64_t synced_writes = 0;
  uint64_t inputs = 0;  // messages, appends, truncates, reads, ticks handled
};

// A snapshot of one replica's state (GetStatus()).
struct LogServerStatus {
  uint32_t id = 0;
  bool running = false;  // between a successful Start() and Stop()
  cairn::v1::Metadata::Status status = cairn::v1::Metadata::EMPTY;
  std::string status_detail;  // why not voting, if so
  Ballot promised;
  uint64_t begin = 1;
  uint64_t end = 0;
  uint64_t learned_through = 0;
  uint64_t known_committed = 0;
  std::optional<uint32_t> leader;  // the replica believed to lead
  Proposer::Role role = Proposer::Role::kFollower;
  bool serving = false;  // leader whose lease is valid: appends accepted
  Ballot ballot;         // this replica's proposer ballot (current or last)
  absl::Duration lease_remaining;  // zero unless leading
  uint64_t committed = 0;          // proposer's chosen prefix (when leading)
  uint64_t in_flight = 0;          // positions in phase 2
  uint64_t queued = 0;             // appends waiting for a position
  uint64_t elections_won = 0;
  uint64_t bytes_on_disk = 0;  // refreshed about once a second
  LogServerCounters counters;
  TransportStats transport;
};

// An Append/Truncate failure after which the entry is certainly NOT in the
// log (this replica was not the serving leader, or not running), so retrying
// it elsewhere cannot duplicate it: kUnavailable carrying a payload that
// IsNotAppended() recognises. Other kUnavailable results of an append mean
// its outcome is unknown.
absl::Status NotAppendedError(absl::string_view message);
bool IsNotAppended(const absl::Status& status);

// "VOTING", "EMPTY", ...; "follower", "candidate", "filling", "leader".
std::string ReplicaStatusName(cairn::v1::Metadata::Status status);
std::string RoleName(Proposer::Role role);

class LogServer {
 public:
  // Result of an Append or Truncate: OK with the position (and index in the
  // position's batch) where it was chosen; kUnavailable when this replica is
  // not the serving leader or not running (nothing was appended:
  // IsNotAppended(); the message names the leader if one is known) or lost
  // leadership or stopped before the entry was chosen (it may or may not end
  // up in the log); kFailedPrecondition for a Truncate past the chosen
  // prefix.
  using AppendCallback = std::function<void(const AppendResult& result)>;
  using LeadershipListener = std::function<void(const LeadershipChange&)>;
  using StatusObserver = std::function<void(const LogServerStatus&)>;

  // Opens the storage in options.dir and binds the peer port. Returns
  // kInvalidArgument for a bad configuration (node_id not in replicas, a
  // peer address for an unknown id), kUnavailable when the directory is
  // locked by another process or cannot be opened, or the port cannot be
  // bound; kDataLoss when LevelDB finds the store corrupt.
  static absl::StatusOr<std::unique_ptr<LogServer>> Create(
      LogServerOptions options);

  LogServer(const LogServer&) = delete;
  LogServer& operator=(const LogServer&) = delete;
  // Stops the server (see Stop()).
  ~LogServer();

  // Loads the replica's durable state and starts the node thread. Returns
  // the storage error if loading fails (the server is then unusable), or
  // kFailedPrecondition if already started or stopped.
  absl::Status Start();

  // Stops the node thread and the transport. Appends and truncates not yet
  // completed fail with kUnavailable (they may or may not be in the log).
  // Idempotent. REQUIRES: not called from a callback.
  void Stop();

  // The bound peer port.
  uint16_t peer_port() const { return transport_->port(); }
  // Sets (or changes) where replica `id` listens for peers.
  void SetPeerAddress(uint32_t id, const PeerAddress& address);

  // Appends `entry`; `done` runs once, on the node thread (see above).
  void Append(std::string entry, AppendCallback done);
  // Appends a truncate entry: once chosen, positions < `to` are deleted on
  // every replica. `done` as for Append.
  void Truncate(uint64_t to, AppendCallback done);

  // Reads learned actions with from <= position <= min(to, learned_through),
  // at most `limit` of them, in position order. Waits for the node thread up
  // to `timeout`. Errors: kDeadlineExceeded (node thread busy),
  // kUnavailable (not running), kDataLoss (a stored record failed its
  // checksum; the replica starts recovering).
  absl::StatusOr<std::vector<Action>> Read(
      uint64_t from, uint64_t to, size_t limit,
      absl::Duration timeout = absl::Seconds(10));

  // The latest snapshot, published by the node thread after every round.
  LogServerStatus GetStatus() const;

  // Blocks until learned_through >= position, and returns it.
  // kDeadlineExceeded at `deadline` (wall-clock absl::Now() time),
  // kUnavailable once the server stops.
  absl::StatusOr<uint64_t> WaitForLearned(uint64_t position,
                                          absl::Time deadline);

  // Called on every LeadershipChange the Node reports (elected once serving;
  // lost when it steps down). Replaces the previous listener.
  void SetLeadershipListener(LeadershipListener listener);

  const LogServerOptions& options() const { return options_; }

  // Test hook: called with every published status (on the node thread).
  void TEST_SetStatusObserver(StatusObserver observer);

 private:
  struct ReadRequest;
  struct AppendWork {
    std::string entry;
    AppendCallback done;
  };
  struct TruncateWork {
    uint64_t to = 0;
    AppendCallback done;
  };
  using Work = std::variant<LogMessage, AppendWork, TruncateWork,
                            std::shared_ptr<ReadRequest>>;

  LogServer(LogServerOptions options, std::unique_ptr<LevelDbStorage> storage);

  // Queues `work` for the node thread (or answers it at once when the
  // server does not run).
  void Post(Work work);
  // Node thread: makes sure a round runs soon.
  void ScheduleRound();
  // Node thread: handles everything received since the last round (and the
  // tick, when due), then carries out the Effects and publishes the status.
  void RunRound();
  // Node thread: runs a round every tick_interval.
  void ScheduleTick();
  // True when handling `work` reads storage (flush first).
  static bool ReadsStorage(const Work& work);
  void Handle(Work& work, Effects* pending);
  void HandleRead(ReadRequest* request);
  // Carries out `effects` (write, send, complete) and clears it.
  void Flush(Effects* effects);
  void Complete(const AppendResult& result);
  void Publish(absl::Time now);
  void FailEverything();
  std::string NotLeaderMessage() const;
  bool OnNodeThread() const;

  const LogServerOptions options_;
  // Node thread only (after Start()).
  bool node_running_ = false;  // between node_->Start() and Stop()
  absl::Time next_tick_ = absl::InfinitePast();
  std::unique_ptr<LevelDbStorage> storage_;
  std::unique_ptr<Node> node_;
  absl::flat_hash_map<uint64_t, AppendCallback> callbacks_;
  uint64_t next_append_id_ = 1;
  std::deque<Work> self_inbox_;  // messages to ourselves, for the next round
  LogServerCounters counters_;
  uint64_t bytes_on_disk_ = 0;
  absl::Time bytes_measured_ = absl::InfinitePast();

  absl::Time transport_measured_ = absl::InfinitePast();
  TransportStats transport_stats_;

  std::unique_ptr<Transport> transport_;
  // Serializes Start() and Stop(). (std::mutex rather than absl::Mutex
  // throughout: TSan cannot see into Debian's uninstrumented abseil.)
  std::mutex lifecycle_mu_;

  mutable std::mutex mu_;
  // Signalled when status_ is published or stopping_ is set.
  std::condition_variable status_cv_;
  std::deque<Work> mailbox_;      // guarded by mu_
  size_t mailbox_messages_ = 0;   // guarded by mu_
  bool round_posted_ = false;     // guarded by mu_; a RunRound is queued
  uint64_t mailbox_dropped_ = 0;  // guarded by mu_
  bool started_ = false;          // guarded by mu_
  bool stopping_ = false;         // guarded by mu_
  bool stopped_ = false;          // guarded by mu_; Stop() has finished
  LogServerStatus status_;        // guarded by mu_

  mutable std::mutex listeners_mu_;
  LeadershipListener leadership_listener_;  // guarded by listeners_mu_
  StatusObserver status_observer_;          // guarded by listeners_mu_
};

}  // namespace cairn::log

#endif  // CAIRN_LOG_SERVER_H_
