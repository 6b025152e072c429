#include "log/proposer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace cairn::log {

namespace {
// Accept messages carry at most this many actions.
constexpr size_t kAcceptMessageActions = 256;
}  // namespace

Proposer::Proposer(const Config& config) : config_(config) {}

bool Proposer::serving(absl::Time now) const {
  return role_ == Role::kLeader && now >= serve_after_ && now < lease_expiry_;
}

void Proposer::Campaign(uint64_t from_position, uint64_t round_floor,
                        absl::Time now, Effects* out) {
  if (role_ != Role::kFollower) StepDown("starting a new campaign", out);
  max_round_seen_ = std::max({max_round_seen_, round_floor, ballot_.round()});
  ballot_ = MakeBallot(max_round_seen_ + 1, config_.node_id);
  max_round_seen_ = ballot_.round();
  role_ = Role::kCandidate;
  recampaign_requested_ = false;
  phase1_from_ = std::max<uint64_t>(from_position, 1);
  phase1_started_ = now;
  page_from_.clear();
  page_sent_.clear();
  promised_by_.clear();
  best_.clear();
  fill_end_ = 0;
  max_begin_ = 0;
  VLOG(1) << "node " << config_.node_id << " campaigns with ballot "
          << BallotString(ballot_) << " from position " << phase1_from_;
  for (uint32_t id : config_.replicas) {
    page_from_[id] = phase1_from_;
    page_sent_[id] = now;
    auto& req = *out->Send(config_.node_id, id).mutable_promise_request();
    *req.mutable_ballot() = ballot_;
    req.set_from_position(phase1_from_);
  }
}

void Proposer::Handle(const LogMessage& m, absl::Time now, Effects* out) {
  switch (m.body_case()) {
    case LogMessage::kPromiseResponse:
      HandlePromiseResponse(m, now, out);
      break;
    case LogMessage::kAcceptResponse:
      HandleAcceptResponse(m, now, out);
      break;
    case LogMessage::kHeartbeatResponse:
      HandleHeartbeatResponse(m, now, out);
      break;
    default:
      break;
  }
}

void Proposer::Demote(const Ballot& higher, Effects* out) {
  max_round_seen_ = std::max(max_round_seen_, higher.round());
  if (role_ == Role::kFollower) return;
  StepDown(absl::StrCat("ballot ", BallotString(ballot_),
                        " rejected: a replica promised ",
                        BallotString(higher)),
           out);
}

void Proposer::StepDown(const std::string& reason, Effects* out) {
  recampaign_requested_ = false;
  if (role_ == Role::kFollower) return;
  VLOG(1) << "node " << config_.node_id << " steps down at ballot "
          << BallotString(ballot_) << ": " << reason;
  if (announced_) {
    LeadershipChange change;
    change.became_leader = false;
    change.ballot = ballot_;
    change.reason = reason;
    out->leadership.push_back(std::move(change));
  }
  FailAll(absl::UnavailableError(absl::StrCat(
              "leadership lost (", reason,
              "); the entry may or may not be in the log")),
          out);
  role_ = Role::kFollower;
  announced_ = false;
  serve_after_ = absl::InfiniteFuture();
  lease_expiry_ = absl::InfinitePast();
  heartbeats_.clear();
  slots_.clear();
  best_.clear();
}

void Proposer::FailAll(const absl::Status& status, Effects* out) {
  for (auto& [position, slot] : slots_) {
    for (size_t i = 0; i < slot.append_ids.size(); ++i) {
      out->append_results.push_back({slot.append_ids[i], status, 0, 0});
    }
    slot.append_ids.clear();
  }
  for (const Pending& p : queue_) {
    out->append_results.push_back({p.id, status, 0, 0});
  }
  queue_.clear();
}

void Proposer::HandlePromiseResponse(const LogMessage& m, absl::Time now,
                                     Effects* out) {
  const auto& resp = m.promise_response();
  if (!resp.ok()) {
    if (resp.ballot() > ballot_) Demote(resp.ballot(), out);
    return;
  }
  if (role_ != Role::kCandidate || resp.ballot() != ballot_) return;
  auto page = page_from_.find(m.from());
  if (page == page_from_.end() || page->second != resp.from_position()) {
    return;  // duplicate or stale page
  }
  for (const Action& a : resp.actions()) {
    max_round_seen_ = std::max(max_round_seen_, a.ballot().round());
    auto it = best_.find(a.position());
    if (it == best_.end()) {
      best_[a.position()] = a;
    } else if (it->second.learned()) {
      // A chosen value is final.
    } else if (a.learned() || a.ballot() > it->second.ballot()) {
      it->second = a;
    }
  }
  fill_end_ = std::max(fill_end_, resp.end_position());
  max_begin_ = std::max(max_begin_, resp.begin_position());
  if (resp.more() && !resp.actions().empty()) {
    const uint64_t next = resp.actions().rbegin()->position() + 1;
    page->second = next;
    page_sent_[m.from()] = now;
    phase1_started_ = now;  // progress: keep the candidacy alive
    auto& req = *out->Send(config_.node_id, m.from()).mutable_promise_request();
    *req.mutable_ballot() = ballot_;
    req.set_from_position(next);
    return;
  }
  page_from_.erase(page);
  promised_by_.insert(m.from());
  if (promised_by_.size() >= config_.quorum()) StartFilling(now, out);
}

void Proposer::StartFilling(absl::Time now, Effects* out) {
  role_ = Role::kFilling;
  last_progress_ = now;
  const uint64_t start = std::max(phase1_from_, max_begin_);
  committed_ = start - 1;
  next_position_ = std::max(fill_end_ + 1, start);
  slots_.clear();
  std::vector<uint64_t> to_propose;
  std::vector<uint64_t> already_chosen;
  for (uint64_t p = start; p < next_position_; ++p) {
    Slot& slot = slots_[p];
    slot.action.set_position(p);
    *slot.action.mutable_ballot() = ballot_;
    auto it = best_.find(p);
    if (it != best_.end() && it->second.learned()) {
      *slot.action.mutable_value() = it->second.value();
      *slot.action.mutable_ballot() = it->second.ballot();
      already_chosen.push_back(p);
    } else if (it != best_.end()) {
      *slot.action.mutable_value() = it->second.value();
      to_propose.push_back(p);
    } else {
      slot.action.mutable_value()->set_kind(Value::NOOP);
      to_propose.push_back(p);
    }
  }
  best_.clear();
  VLOG(1) << "node " << config_.node_id << " won phase 1 at "
          << BallotString(ballot_) << "; filling [" << start << ", "
          << next_position_ - 1 << "]: " << to_propose.size()
          << " to propose, " << already_chosen.size() << " already chosen";
  SendAccepts(to_propose, nullptr, now, out);
  Chosen(already_chosen, now, out);
  if (role_ == Role::kFilling && slots_.empty()) BecomeLeader(now, out);
}

void Proposer::BecomeLeader(absl::Time now, Effects* out) {
  role_ = Role::kLeader;
  elected_at_ = now;
  ++elections_won_;
  // The previous leader may hold a lease granted just before we won; it
  // expires within lease_duration of its clock. Allow for drift.
  serve_after_ =
      now + config_.lease_duration * (1.0 + config_.max_clock_drift);
  lease_expiry_ = absl::InfinitePast();
  heartbeats_.clear();
  SendHeartbeat(now, out);
}

void Proposer::SendAccepts(const std::vector<uint64_t>& positions,
                           const std::set<uint32_t>* only_missing,
                           absl::Time now, Effects* out) {
  if (positions.empty()) return;
  for (uint32_t id : config_.replicas) {
    LogMessage* msg = nullptr;
    size_t bytes = 0;
    for (uint64_t p : positions) {
      Slot& slot = slots_[p];
      if (only_missing != nullptr && slot.acks.count(id)) continue;
      const size_t size = slot.action.ByteSizeLong();
      if (msg == nullptr ||
          msg->accept_request().actions_size() >=
              static_cast<int>(kAcceptMessageActions) ||
          bytes + size > config_.max_message_bytes) {
        msg = &out->Send(config_.node_id, id);
        *msg->mutable_accept_request()->mutable_ballot() = ballot_;
        bytes = 0;
      }
      bytes += size;
      *msg->mutable_accept_request()->add_actions() = slot.action;
    }
  }
  for (uint64_t p : positions) slots_[p].last_sent = now;
}

void Proposer::HandleAcceptResponse(const LogMessage& m, absl::Time now,
                                    Effects* out) {
  const auto& resp = m.accept_response();
  if (!resp.ok()) {
    if (resp.ballot() > ballot_) Demote(resp.ballot(), out);
    return;
  }
  if (resp.ballot() != ballot_ ||
      (role_ != Role::kFilling && role_ != Role::kLeader)) {
    return;
  }
  std::vector<uint64_t> chosen;
  for (uint64_t p : resp.positions()) {
    auto it = slots_.find(p);
    if (it == slots_.end() || it->second.chosen) continue;
    it->second.acks.insert(m.from());
    if (it->second.acks.size() >= config_.quorum()) chosen.push_back(p);
  }
  Chosen(chosen, now, out);
}

void Proposer::Chosen(const std::vector<uint64_t>& positions, absl::Time now,
                      Effects* out) {
  if (positions.empty()) return;
  last_progress_ = now;
  std::vector<const Action*> learned;
  for (uint64_t p : positions) {
    Slot& slot = slots_[p];
    slot.chosen = true;
    slot.action.set_learned(true);
    learned.push_back(&slot.action);
  }
  for (uint32_t id : config_.replicas) {
    auto& msg = *out->Send(config_.node_id, id).mutable_learned();
    for (const Action* a : learned) *msg.add_actions() = *a;
  }
  AdvanceCommitted(out);
  if (role_ == Role::kFilling && slots_.empty()) BecomeLeader(now, out);
  if (role_ == Role::kLeader) Flush(now, out);
}

void Proposer::AdvanceCommitted(Effects* out) {
  while (!slots_.empty() && slots_.begin()->second.chosen &&
         slots_.begin()->first == committed_ + 1) {
    Slot& slot = slots_.begin()->second;
    for (size_t i = 0; i < slot.append_ids.size(); ++i) {
      out->append_results.push_back({slot.append_ids[i], absl::OkStatus(),
                                     slots_.begin()->first,
                                     static_cast<uint32_t>(i)});
    }
    ++committed_;
    slots_.erase(slots_.begin());
  }
}

void Proposer::HandleHeartbeatResponse(const LogMessage& m, absl::Time now,
                                       Effects* out) {
  const auto& resp = m.heartbeat_response();
  if (!resp.ok()) {
    if (resp.ballot() > ballot_) Demote(resp.ballot(), out);
    if (resp.needs_higher_ballot() && role_ == Role::kLeader &&
        resp.recover_ballot() >= ballot_) {
      // A replica that lost state may have voted at our ballot; only a new
      // phase 1 above it lets it vote again (docs/log.md, "Disk loss").
      recampaign_requested_ = true;
    }
    return;
  }
  if (role_ != Role::kLeader || resp.ballot() != ballot_) return;
  auto it = heartbeats_.find(resp.sequence());
  if (it == heartbeats_.end()) return;
  it->second.second.insert(m.from());
  if (it->second.second.size() >= config_.quorum()) {
    lease_expiry_ =
        std::max(lease_expiry_, it->second.first + config_.lease_duration);
    // Older heartbeats can no longer extend the lease.
    heartbeats_.erase(heartbeats_.begin(), std::next(it));
  }
  if (!announced_ && serving(now)) {
    announced_ = true;
    out->leadership.push_back({true, ballot_, "elected"});
    Flush(now, out);
  }
}

void Proposer::SendHeartbeat(absl::Time now, Effects* out) {
  const uint64_t seq = ++heartbeat_sequence_;
  heartbeats_[seq] = {now, {}};
  while (heartbeats_.size() > 64) heartbeats_.erase(heartbeats_.begin());
  last_heartbeat_ = now;
  for (uint32_t id : config_.replicas) {
    auto& hb = *out->Send(config_.node_id, id).mutable_heartbeat();
    *hb.mutable_ballot() = ballot_;
    hb.set_committed(committed_);
    hb.set_sequence(seq);
  }
}

void Proposer::Append(uint64_t id, std::string entry, absl::Time now,
                      Effects* out) {
  if (!serving(now)) {
    out->append_results.push_back(
        {id, absl::UnavailableError("not the serving leader"), 0, 0});
    return;
  }
  if (queue_.size() >= config_.max_queued_entries) {
    out->append_results.push_back(
        {id,
         absl::ResourceExhaustedError(absl::StrCat(
             "append queue full (", queue_.size(),
             " entries waiting); nothing was appended, retry later")),
         0, 0});
    return;
  }
  queue_.push_back({id, std::move(entry), false, 0});
  Flush(now, out);
}

void Proposer::Truncate(uint64_t id, uint64_t to, absl::Time now,
                        Effects* out) {
  if (!serving(now)) {
    out->append_results.push_back(
        {id, absl::UnavailableError("not the serving leader"), 0, 0});
    return;
  }
  if (to > committed_ + 1) {
    out->append_results.push_back(
        {id,
         absl::FailedPreconditionError(absl::StrCat(
             "cannot truncate to ", to, ": only positions up to ",
             committed_, " are chosen")),
         0, 0});
    return;
  }
  queue_.push_back({id, "", true, to});
  Flush(now, out);
}

void Proposer::FillThrough(uint64_t position, uint64_t max_fill,
                           absl::Time now, Effects* out) {
  if (!serving(now) || position < next_position_) return;
  const uint64_t last = std::min(position, next_position_ + max_fill - 1);
  std::vector<uint64_t> proposed;
  while (next_position_ <= last) {
    const uint64_t p = next_position_++;
    Slot& slot = slots_[p];
    slot.action.set_position(p);
    *slot.action.mutable_ballot() = ballot_;
    slot.action.mutable_value()->set_kind(Value::NOOP);
    proposed.push_back(p);
  }
  SendAccepts(proposed, nullptr, now, out);
}

void Proposer::Flush(absl::Time now, Effects* out) {
  if (!serving(now)) return;
  std::vector<uint64_t> proposed;
  while (!queue_.empty() && slots_.size() < config_.max_in_flight &&
         (slots_.empty() || queue_.size() >= config_.pipeline_min_entries ||
          queue_.front().truncate)) {
    const uint64_t p = next_position_++;
    Slot& slot = slots_[p];
    slot.action.set_position(p);
    *slot.action.mutable_ballot() = ballot_;
    Value* value = slot.action.mutable_value();
    if (queue_.front().truncate) {
      value->set_kind(Value::TRUNCATE);
      value->set_truncate_to(queue_.front().truncate_to);
      slot.append_ids.push_back(queue_.front().id);
      queue_.pop_front();
    } else {
      value->set_kind(Value::APPEND);
      size_t bytes = 0;
      while (!queue_.empty() && !queue_.front().truncate &&
             slot.append_ids.size() < config_.max_batch_entries &&
             (slot.append_ids.empty() ||
              bytes + queue_.front().entry.size() <=
                  config_.max_batch_bytes)) {
        bytes += queue_.front().entry.size();
        value->add_entries(std::move(queue_.front().entry));
        slot.append_ids.push_back(queue_.front().id);
        queue_.pop_front();
      }
    }
    proposed.push_back(p);
  }
  SendAccepts(proposed, nullptr, now, out);
}

void Proposer::Tick(absl::Time now, Effects* out) {
  switch (role_) {
    case Role::kFollower:
      return;
    case Role::kCandidate: {
      if (now - phase1_started_ >= config_.election_timeout) {
        StepDown("phase 1 timed out", out);
        return;
      }
      for (const auto& [id, from] : page_from_) {
        if (now - page_sent_[id] < config_.retransmit_interval) continue;
        page_sent_[id] = now;
        auto& req = *out->Send(config_.node_id, id).mutable_promise_request();
        *req.mutable_ballot() = ballot_;
        req.set_from_position(from);
      }
      return;
    }
    case Role::kFilling:
    case Role::kLeader: {
      if (role_ == Role::kFilling &&
          now - last_progress_ >= config_.election_timeout) {
        StepDown("filling holes made no progress", out);
        return;
      }
      if (role_ == Role::kLeader) {
        const absl::Time renewed = std::max(elected_at_, lease_expiry_ -
                                                             config_.lease_duration);
        if (now - renewed >= config_.lease_duration) {
          StepDown("lease expired: no quorum acknowledged heartbeats", out);
          return;
        }
        if (now - last_heartbeat_ >= config_.heartbeat_interval) {
          SendHeartbeat(now, out);
        }
        if (!announced_ && serving(now)) {
          announced_ = true;
          out->leadership.push_back({true, ballot_, "elected"});
        }
      }
      std::vector<uint64_t> stale;
      for (const auto& [p, slot] : slots_) {
        if (!slot.chosen && now - slot.last_sent >= config_.retransmit_interval) {
          stale.push_back(p);
        }
      }
      // Resend each stale position to the replicas that have not accepted.
      for (uint64_t p : stale) {
        Slot& slot = slots_[p];
        for (uint32_t id : config_.replicas) {
          if (slot.acks.count(id)) continue;
          auto& req = *out->Send(config_.node_id, id).mutable_accept_request();
          *req.mutable_ballot() = ballot_;
          *req.add_actions() = slot.action;
        }
        slot.last_sent = now;
      }
      Flush(now, out);
      return;
    }
  }
}

}  // namespace cairn::log
