// Shared vocabulary of the log's protocol core: configuration, ballots, and
// the Effects a Handle() call asks its adapter to carry out.
//
// The protocol core (Replica, Proposer, Node) is sans-IO: it never reads a
// clock, never blocks and never writes to disk or network itself. It reads
// durable state through Storage, and returns every change as Effects. An
// adapter (the real server or the simulator) must, for each Effects:
//   1. apply `write` to Storage (with fsync when `sync`), then
//   2. deliver `messages` (including those addressed to this node itself),
//      `append_results` and `leadership` changes.
// Nothing in (2) may become visible before (1) is durable: that is what
// makes every reply a promise kept across a crash.

#ifndef CAIRN_LOG_TYPES_H_
#define CAIRN_LOG_TYPES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "cairn/v1/log.pb.h"
#include "log/storage.h"

namespace cairn::v1 {

// Ballots are totally ordered by (round, node_id). (In the message's own
// namespace so argument-dependent lookup finds them everywhere.)
inline bool operator<(const Ballot& a, const Ballot& b) {
  return a.round() != b.round() ? a.round() < b.round()
                                : a.node_id() < b.node_id();
}
inline bool operator==(const Ballot& a, const Ballot& b) {
  return a.round() == b.round() && a.node_id() == b.node_id();
}
inline bool operator!=(const Ballot& a, const Ballot& b) { return !(a == b); }
inline bool operator<=(const Ballot& a, const Ballot& b) { return !(b < a); }
inline bool operator>(const Ballot& a, const Ballot& b) { return b < a; }
inline bool operator>=(const Ballot& a, const Ballot& b) { return !(a < b); }

}  // namespace cairn::v1

namespace cairn::log {

using cairn::v1::Action;
using cairn::v1::Ballot;
using cairn::v1::LogMessage;
using cairn::v1::Metadata;
using cairn::v1::Value;

inline Ballot MakeBallot(uint64_t round, uint32_t node_id) {
  Ballot b;
  b.set_round(round);
  b.set_node_id(node_id);
  return b;
}

std::string BallotString(const Ballot& b);

struct Config {
  uint32_t node_id = 0;
  std::vector<uint32_t> replicas;  // every replica's id, including node_id

  // Leader liveness and lease. A leader's lease lasts `lease_duration` from
  // the send time of a heartbeat a quorum acknowledged; a new leader waits
  // `lease_duration * (1 + max_clock_drift)` after winning before serving.
  absl::Duration heartbeat_interval = absl::Milliseconds(100);
  absl::Duration lease_duration = absl::Milliseconds(1000);
  double max_clock_drift = 0.05;
  // A follower that hears no leader for a random time in
  // [election_timeout, 2 * election_timeout) campaigns.
  absl::Duration election_timeout = absl::Milliseconds(1500);

  // Resend unanswered phase 1 / phase 2 messages after this long.
  absl::Duration retransmit_interval = absl::Milliseconds(200);

  // Catch-up: at most one fetch in flight, at most this often, this big.
  absl::Duration fetch_interval = absl::Milliseconds(5);
  absl::Duration fetch_timeout = absl::Milliseconds(500);
  uint32_t fetch_max_actions = 512;

  // Recovery of an EMPTY replica: ask peers this often.
  absl::Duration recover_interval = absl::Milliseconds(250);
  // Brand-new cluster (every replica EMPTY) initialises itself.
  bool auto_initialize = true;

  // A voting replica that heard its leader within election_timeout ignores
  // other nodes' PromiseRequests (keeps a healthy leader from being deposed
  // by a node that merely lost contact). Refusing to promise is always safe;
  // simulations turn it off to exercise dueling proposers.
  bool sticky_leader = true;

  // Phase 2 pipelining and batching (group commit).
  size_t max_in_flight = 8;            // positions proposed, not yet chosen
  // Adaptive pipelining: with nothing in flight an append goes out at once
  // (lowest latency); while positions are in flight, another one opens only
  // once this many entries have queued, so concurrent appenders share
  // positions (fewer fsyncs) and the pipeline fills only under real load.
  size_t pipeline_min_entries = 8;
  // Backpressure: appends beyond this many queued at the leader are refused
  // at once with kResourceExhausted (nothing appended; retry later).
  size_t max_queued_entries = 100000;
  size_t max_batch_entries = 4096;     // entries per position
  size_t max_batch_bytes = 4 << 20;    // bytes per position
  // Phase 1 answers carry at most this many actions per message.
  uint32_t promise_page_actions = 1024;
  // No message the core builds carries more than this many bytes of actions
  // (one action alone may exceed it; max_batch_bytes bounds that). Keeps
  // every message under the transport's frame limit.
  size_t max_message_bytes = 8 << 20;

  // Scrubbing: every scrub_interval, verify the checksums of the next
  // scrub_batch stored records (cycling through the log), so a corrupted
  // record nobody reads is still found and re-fetched.
  absl::Duration scrub_interval = absl::Seconds(1);
  uint32_t scrub_batch = 256;

  uint64_t seed = 1;  // election jitter

  size_t quorum() const { return replicas.size() / 2 + 1; }
};

// Outcome of one Append or Truncate.
struct AppendResult {
  uint64_t id = 0;
  absl::Status status;    // OK, or kUnavailable (not leader / lost leadership;
                          // the entry may or may not end up in the log)
  uint64_t position = 0;  // where it was chosen (when OK)
  uint32_t index = 0;     // its index within that position's batch
};

struct LeadershipChange {
  bool became_leader = false;  // else lost leadership
  Ballot ballot;
  std::string reason;
};

struct Effects {
  WriteBatch write;
  bool sync = false;
  std::vector<LogMessage> messages;
  std::vector<AppendResult> append_results;
  std::vector<LeadershipChange> leadership;

  bool empty() const {
    return write.empty() && messages.empty() && append_results.empty() &&
           leadership.empty();
  }
  // Records an action to persist; a later one at the same position wins.
  void Persist(const Action& action) { write.actions.push_back(action); }
  LogMessage& Send(uint32_t from, uint32_t to) {
    messages.emplace_back();
    messages.back().set_from(from);
    messages.back().set_to(to);
    return messages.back();
  }
};

}  // namespace cairn::log

#endif  // CAIRN_LOG_TYPES_H_
