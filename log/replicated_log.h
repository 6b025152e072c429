// ReplicatedLog: the replicated log as a library, for the process that hosts
// a replica (cairn-master embeds one; cairn-log serves one over HTTP). A thin
// facade over LogServer (server.h) that speaks in application entries rather
// than protocol actions.
//
//   auto log = ReplicatedLog::Open(options);   // starts the replica
//   log->SetLeadershipListener([](bool leader, const Ballot& b) { ... });
//   log->Append(event_bytes, [](absl::StatusOr<Position> p) { ... });
//   auto entries = log->Read(from, to);        // learned entries, in order
//   log->WaitForLearned(position, deadline);   // a standby tails the log
//
// Positions and entries: the log is a sequence of positions 1, 2, ...; each
// chosen position holds a batch of entries (group commit), a no-op (filling
// a hole left by a failed leader) or a truncation mark. An appended entry is
// identified by (position, index within the batch). Read() yields only the
// entries: no-op and truncate positions yield none.
//
// Consistency: Append completes only when its entry is chosen (durable on a
// quorum) and every earlier position is chosen too. Read() returns entries
// this replica has learned, in log order; on a follower that may lag the
// leader (use WaitForLearned to catch up to a known position).
//
// Thread safety: every method may be called from any thread. Callbacks run
// on the log's own thread: they must not block (hand work to your own
// thread) and must not call Stop(); they may call Append, Truncate, Read and
// Status.

#ifndef CAIRN_LOG_REPLICATED_LOG_H_
#define CAIRN_LOG_REPLICATED_LOG_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "log/server.h"

namespace cairn::log {

// Where an appended entry was chosen.
struct Position {
  uint64_t position = 0;
  uint32_t index = 0;  // within the position's batch
};

// One application entry read back from the log.
struct Entry {
  uint64_t position = 0;
  uint32_t index = 0;
  std::string data;
};

// A bounded read: the entries of positions [from, next), in order.
struct ReadPage {
  std::vector<Entry> entries;
  uint64_t next = 0;  // first position not covered; read on from there
};

class ReplicatedLog {
 public:
  using AppendDone = std::function<void(absl::StatusOr<Position>)>;
  // OK with the truncate entry's own position once it is chosen.
  using TruncateDone = std::function<void(absl::StatusOr<uint64_t>)>;
  using LeadershipListener =
      std::function<void(bool leader, const Ballot& ballot)>;

  // Opens the replica's storage, binds its peer port and starts it, with
  // `leadership` (if any) installed first so no change is missed (see
  // SetLeadershipListener). Errors as LogServer::Create() and
  // LogServer::Start().
  static absl::StatusOr<std::unique_ptr<ReplicatedLog>> Open(
      LogServerOptions options, LeadershipListener leadership = nullptr);

  ReplicatedLog(const ReplicatedLog&) = delete;
  ReplicatedLog& operator=(const ReplicatedLog&) = delete;
  // Stops the replica (see Stop()).
  ~ReplicatedLog();

  // Stops the replica; appends and truncates in progress fail with
  // kUnavailable. Idempotent. REQUIRES: not called from a callback.
  void Stop();

  // Appends `entry`. `done` runs once: OK with its Position when chosen;
  // kUnavailable when this replica is not the serving leader (nothing was
  // appended; the message names the leader when one is known, see also
  // Status().leader), or when leadership was lost or the log stopped before
  // the entry was chosen (it may or may not end up in the log).
  void Append(std::string entry, AppendDone done);

  // Appends a truncate entry: once chosen, every position < `to` is deleted
  // on every replica. `done` as for Append, plus kFailedPrecondition when
  // `to` is beyond the chosen prefix + 1.
  void Truncate(uint64_t to, TruncateDone done);

  // Returns the entries of the learned positions in [from, to], in order
  // (to is capped at Status().learned_through). Errors: kOutOfRange when
  // positions >= `from` were truncated (the message names the first
  // retained position); kDataLoss when a stored record fails its checksum;
  // kDeadlineExceeded or kUnavailable when the log thread is busy or stopped.
  absl::StatusOr<std::vector<Entry>> Read(uint64_t from, uint64_t to);

  // Like Read() but covers at most `max_positions` positions (>= 1) and
  // says where to continue.
  absl::StatusOr<ReadPage> Read(uint64_t from, uint64_t to,
                                size_t max_positions);

  // Blocks until every position <= `position` is learned here; returns the
  // learned prefix then. kDeadlineExceeded at `deadline` (absl::Now() time),
  // kUnavailable when the log stops. A standby tails the log with
  //   for (next = 1;; next = page.next) {
  //     WaitForLearned(next, deadline); page = Read(next, kMax, 1024); ...
  //   }
  absl::StatusOr<uint64_t> WaitForLearned(uint64_t position,
                                          absl::Time deadline);

  // Called with (true, ballot) when this replica becomes the serving leader
  // and (false, ballot) when it stops leading (lease lost, a higher ballot
  // seen). Stop() does not call it. Replaces the previous listener.
  void SetLeadershipListener(LeadershipListener listener);

  // A snapshot of the replica's state and counters.
  LogServerStatus Status() const { return server_->GetStatus(); }

  // Sets (or changes) where replica `id` listens for peers.
  void SetPeerAddress(uint32_t id, const PeerAddress& address) {
    server_->SetPeerAddress(id, address);
  }
  uint16_t peer_port() const { return server_->peer_port(); }
  uint32_t id() const { return server_->options().config.node_id; }

  LogServer* server() { return server_.get(); }

 private:
  explicit ReplicatedLog(std::unique_ptr<LogServer> server);

  std::unique_ptr<LogServer> server_;
};

// The entries of a chosen action (none for NOOP and TRUNCATE).
std::vector<Entry> EntriesOf(const Action& action);

}  // namespace cairn::log

#endif  // CAIRN_LOG_REPLICATED_LOG_H_
