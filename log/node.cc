#include "log/node.h"

#include <algorithm>
#include <utility>

#include "common/logging.h"

namespace cairn::log {

Node::Node(const Config& config, Storage* storage)
    : config_(config),
      replica_(config, storage),
      proposer_(config),
      rng_(config.seed * 0x9E3779B97F4A7C15ull + config.node_id) {
  election_timeout_ = RandomElectionTimeout();
}

absl::Duration Node::RandomElectionTimeout() {
  std::uniform_int_distribution<int64_t> jitter(
      0, absl::ToInt64Microseconds(config_.election_timeout));
  return config_.election_timeout + absl::Microseconds(jitter(rng_));
}

absl::Status Node::Start(absl::Time now, Effects* out) {
  started_ = now;
  return replica_.Start(now, out);
}

void Node::Handle(const LogMessage& message, absl::Time now, Effects* out) {
  if (message.to() != config_.node_id) return;
  switch (message.body_case()) {
    case LogMessage::kPromiseResponse:
    case LogMessage::kAcceptResponse:
    case LogMessage::kHeartbeatResponse:
      proposer_.Handle(message, now, out);
      break;
    case LogMessage::kFetchRequest:
      // A recovering replica may be fetching up to a stale accepted position
      // past everything chosen; as leader, fill such positions with NOOPs so
      // it can finish (see Proposer::FillThrough).
      proposer_.FillThrough(message.fetch_request().to_position(),
                            config_.fetch_max_actions, now, out);
      replica_.Handle(message, now, out);
      break;
    default:
      replica_.Handle(message, now, out);
      break;
  }
  // Our own acceptor promised someone else a higher ballot: our ballot is
  // dead whatever the other replicas say.
  if (proposer_.role() != Proposer::Role::kFollower &&
      replica_.promised() > proposer_.ballot()) {
    proposer_.StepDown("our replica promised a higher ballot", out);
  }
}

void Node::Tick(absl::Time now, Effects* out) {
  replica_.Tick(now, out);
  proposer_.Tick(now, out);
  if (proposer_.recampaign_requested()) Campaign(now, out);
  if (replica_.status() == Metadata::RECOVERING &&
      proposer_.serving(now)) {
    // Our own replica may be waiting for positions past everything chosen
    // (stale accepted values it held): fill them so it can finish.
    proposer_.FillThrough(replica_.recover_end(), config_.fetch_max_actions,
                          now, out);
  }
  MaybeCampaign(now, out);
}

void Node::MaybeCampaign(absl::Time now, Effects* out) {
  if (proposer_.role() != Proposer::Role::kFollower) return;
  if (!replica_.voting()) return;
  const absl::Time quiet_since =
      std::max({replica_.last_leader_contact(), started_, last_campaign_});
  if (now - quiet_since < election_timeout_) return;
  // A replica far behind the chosen prefix would have to re-propose what it
  // lacks; let it catch up first unless nobody else has stepped up for long.
  const uint64_t lag =
      replica_.known_committed() > replica_.learned_through()
          ? replica_.known_committed() - replica_.learned_through()
          : 0;
  if (lag > config_.fetch_max_actions &&
      now - quiet_since < 4 * election_timeout_) {
    return;
  }
  Campaign(now, out);
}

void Node::TEST_Campaign(absl::Time now, Effects* out) { Campaign(now, out); }

void Node::Campaign(absl::Time now, Effects* out) {
  last_campaign_ = now;
  election_timeout_ = RandomElectionTimeout();
  if (!replica_.voting()) {
    // Only a voting replica persists our ballot round; without it a
    // restarted proposer could reuse a ballot. Let another node lead.
    proposer_.StepDown("our replica is not voting", out);
    return;
  }
  const uint64_t floor =
      std::max({replica_.max_round_seen(), replica_.promised().round(),
                proposer_.max_round_seen()});
  proposer_.Campaign(replica_.next_unlearned(), floor, now, out);
  // Durable before any PromiseRequest leaves (same Effects: write first).
  replica_.RecordProposerRound(proposer_.ballot().round(), out);
}

void Node::Append(uint64_t id, std::string entry, absl::Time now,
                  Effects* out) {
  proposer_.Append(id, std::move(entry), now, out);
}

void Node::Truncate(uint64_t id, uint64_t to, absl::Time now, Effects* out) {
  proposer_.Truncate(id, to, now, out);
}

absl::StatusOr<std::vector<Action>> Node::Read(uint64_t from, uint64_t to,
                                               size_t limit) {
  return replica_.ReadLearned(from, std::min(to, replica_.learned_through()),
                              limit);
}

std::optional<uint32_t> Node::LeaderHint() const {
  if (proposer_.role() == Proposer::Role::kLeader) return config_.node_id;
  return replica_.leader();
}

}  // namespace cairn::log
