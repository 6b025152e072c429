#include "log/replica.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"

namespace cairn::log {

namespace {
constexpr uint64_t kMaxPosition = std::numeric_limits<uint64_t>::max();
constexpr size_t kScanChunk = 4096;

const char* StatusName(Metadata::Status s) {
  switch (s) {
    case Metadata::VOTING:
      return "VOTING";
    case Metadata::EMPTY:
      return "EMPTY";
    case Metadata::RECOVERING:
      return "RECOVERING";
    case Metadata::STARTING:
      return "STARTING";
    default:
      return "UNKNOWN";
  }
}
}  // namespace

std::string BallotString(const Ballot& b) {
  return absl::StrCat(b.round(), ".", b.node_id());
}

Replica::Replica(const Config& config, Storage* storage)
    : config_(config), storage_(storage) {}

absl::Status Replica::Start(absl::Time now, Effects* out) {
  auto metadata = storage_->ReadMetadata();
  bool corrupt = false;
  uint64_t corrupt_position = 0;
  if (!metadata.ok()) {
    if (metadata.status().code() != absl::StatusCode::kDataLoss) {
      return metadata.status();
    }
    // Lost metadata is a lost disk: the replica may have promised anything.
    LOG(ERROR) << "replica " << config_.node_id
               << ": metadata failed its checksum (" << metadata.status()
               << "); starting EMPTY and recovering from peers";
    metadata_.Clear();
    metadata_.set_status(Metadata::EMPTY);
  } else if (!metadata->has_value()) {
    metadata_.Clear();
    metadata_.set_status(Metadata::EMPTY);
  } else {
    metadata_ = **metadata;
  }
  if (metadata_.begin() == 0) metadata_.set_begin(1);
  ObserveBallot(metadata_.promised());
  ObserveBallot(MakeBallot(metadata_.proposer_round(), 0));

  // Scan stored actions: which positions are learned, the highest one.
  auto last = storage_->LastPosition();
  if (!last.ok()) return last.status();
  uint64_t from = metadata_.begin();
  while (from <= *last) {
    auto chunk = storage_->ReadRange(from, kMaxPosition, kScanChunk);
    if (!chunk.ok()) {
      if (chunk.status().code() != absl::StatusCode::kDataLoss) {
        return chunk.status();
      }
      // Find the bad record(s) one position at a time from here.
      for (uint64_t p = from; p <= *last; ++p) {
        auto one = storage_->Read(p);
        if (!one.ok()) {
          if (one.status().code() != absl::StatusCode::kDataLoss) {
            return one.status();
          }
          if (!corrupt) corrupt_position = p;
          corrupt = true;
          end_ = std::max(end_, p);
          continue;
        }
        if (!one->has_value()) continue;
        end_ = std::max(end_, p);
        if ((*one)->learned()) learned_beyond_.insert(p);
        ObserveBallot((*one)->ballot());
      }
      break;
    }
    if (chunk->empty()) break;
    for (const Action& a : *chunk) {
      end_ = std::max(end_, a.position());
      if (a.learned()) learned_beyond_.insert(a.position());
      ObserveBallot(a.ballot());
    }
    if (chunk->back().position() == kMaxPosition) break;
    from = chunk->back().position() + 1;
  }
  next_unlearned_ = metadata_.begin();
  AdvanceLearnedPrefix();
  if (metadata_.status() == Metadata::EMPTY) {
    // Whatever this replica promised before losing its disk may belong to a
    // phase 1 still in progress. Every phase 1 finishes or is abandoned
    // within election_timeout, after which its promisers' ballots are visible
    // to any quorum we ask; only then do we ask (docs/log.md, "Disk loss").
    recover_not_before_ =
        now + config_.election_timeout * (1.0 + config_.max_clock_drift);
  }
  if (metadata_.status() == Metadata::RECOVERING) {
    status_detail_ = absl::StrCat("RECOVERING: catching up [",
                                  metadata_.recover_begin(), ", ",
                                  metadata_.recover_end(), "]");
  }
  if (corrupt && metadata_.status() != Metadata::EMPTY) {
    EnterRecoveryAfterCorruption(corrupt_position, out);
  }
  LOG(INFO) << "replica " << config_.node_id << " started "
            << StatusName(metadata_.status()) << " promised "
            << BallotString(metadata_.promised()) << " begin "
            << metadata_.begin() << " end " << end_ << " learned through "
            << learned_through();
  Tick(now, out);
  return absl::OkStatus();
}

void Replica::RecordProposerRound(uint64_t round, Effects* out) {
  ObserveBallot(MakeBallot(round, 0));
  if (round <= metadata_.proposer_round()) return;
  metadata_.set_proposer_round(round);
  PersistMetadata(out);
  out->sync = true;
}

void Replica::ObserveBallot(const Ballot& b) {
  max_round_seen_ = std::max(max_round_seen_, b.round());
}

void Replica::PersistMetadata(Effects* out) { out->write.metadata = metadata_; }

void Replica::AdvanceLearnedPrefix() {
  if (next_unlearned_ < metadata_.begin()) next_unlearned_ = metadata_.begin();
  while (!learned_beyond_.empty() &&
         *learned_beyond_.begin() <= next_unlearned_) {
    if (*learned_beyond_.begin() == next_unlearned_) ++next_unlearned_;
    learned_beyond_.erase(learned_beyond_.begin());
  }
}

void Replica::Handle(const LogMessage& m, absl::Time now, Effects* out) {
  switch (m.body_case()) {
    case LogMessage::kPromiseRequest:
      HandlePromise(m, now, out);
      break;
    case LogMessage::kAcceptRequest:
      HandleAccept(m, now, out);
      break;
    case LogMessage::kLearned:
      HandleLearned(m, out);
      break;
    case LogMessage::kHeartbeat:
      HandleHeartbeat(m, now, out);
      break;
    case LogMessage::kFetchRequest:
      HandleFetch(m, out);
      break;
    case LogMessage::kFetchResponse:
      HandleFetchResponse(m, now, out);
      break;
    case LogMessage::kRecoverRequest:
      HandleRecover(m, out);
      break;
    case LogMessage::kRecoverResponse:
      HandleRecoverResponse(m, now, out);
      break;
    default:
      break;  // responses for the proposer are routed elsewhere
  }
}

void Replica::HandlePromise(const LogMessage& m, absl::Time now,
                            Effects* out) {
  const auto& req = m.promise_request();
  ObserveBallot(req.ballot());
  if (!voting()) return;  // never votes before it has recovered
  if (config_.sticky_leader && leader_.has_value() && *leader_ != m.from() &&
      *leader_ != config_.node_id &&
      now - last_leader_contact_ < config_.election_timeout) {
    return;  // a live leader exists; let the candidate time out
  }
  auto& resp = *out->Send(config_.node_id, m.from()).mutable_promise_response();
  resp.set_from_position(req.from_position());
  if (req.ballot() < metadata_.promised()) {
    resp.set_ok(false);
    *resp.mutable_ballot() = metadata_.promised();
    return;
  }
  if (req.ballot() > metadata_.promised()) {
    *metadata_.mutable_promised() = req.ballot();
    PersistMetadata(out);
    out->sync = true;
  }
  uint64_t from = std::max(req.from_position(), metadata_.begin());
  auto actions = storage_->ReadRange(from, kMaxPosition,
                                     config_.promise_page_actions + 1);
  if (!actions.ok()) {
    // Answer nothing: our promise is recorded, but our accepted values are
    // not trustworthy, so this replica cannot vote until it recovers.
    out->messages.pop_back();
    EnterRecoveryAfterCorruption(from, out);
    return;
  }
  if (actions->size() > config_.promise_page_actions) {
    actions->pop_back();
    resp.set_more(true);
  }
  resp.set_ok(true);
  *resp.mutable_ballot() = req.ballot();
  size_t bytes = 0;
  for (auto& a : *actions) {
    bytes += a.ByteSizeLong();
    if (resp.actions_size() > 0 && bytes > config_.max_message_bytes) {
      resp.set_more(true);  // the rest in the next page
      break;
    }
    *resp.add_actions() = std::move(a);
  }
  resp.set_end_position(end_);
  resp.set_begin_position(metadata_.begin());
}

void Replica::HandleAccept(const LogMessage& m, absl::Time now, Effects* out) {
  const auto& req = m.accept_request();
  ObserveBallot(req.ballot());
  if (!voting()) return;
  auto& resp = *out->Send(config_.node_id, m.from()).mutable_accept_response();
  if (req.ballot() < metadata_.promised()) {
    resp.set_ok(false);
    *resp.mutable_ballot() = metadata_.promised();
    for (const Action& a : req.actions()) resp.add_positions(a.position());
    return;
  }
  if (req.ballot() > metadata_.promised()) {
    *metadata_.mutable_promised() = req.ballot();
    PersistMetadata(out);
  }
  leader_ = req.ballot().node_id();
  last_leader_contact_ = now;
  for (const Action& a : req.actions()) {
    const uint64_t p = a.position();
    resp.add_positions(p);
    if (p < metadata_.begin() || p < next_unlearned_ ||
        learned_beyond_.count(p)) {
      continue;  // already chosen here; nothing to accept
    }
    Action stored;
    stored.set_position(p);
    *stored.mutable_ballot() = req.ballot();
    *stored.mutable_value() = a.value();
    stored.set_learned(false);
    out->Persist(stored);
    end_ = std::max(end_, p);
  }
  out->sync = true;
  resp.set_ok(true);
  *resp.mutable_ballot() = req.ballot();
}

void Replica::HandleLearned(const LogMessage& m, Effects* out) {
  for (const Action& a : m.learned().actions()) {
    ObserveBallot(a.ballot());
    known_committed_ = std::max(known_committed_, a.position());
    Learn(a, out);
  }
  if (metadata_.status() == Metadata::RECOVERING) MaybeFinishRecovery(out);
}

void Replica::Learn(const Action& action, Effects* out) {
  const uint64_t p = action.position();
  if (p < metadata_.begin() || p < next_unlearned_ ||
      learned_beyond_.count(p)) {
    return;
  }
  Action stored = action;
  stored.set_learned(true);
  out->Persist(stored);
  end_ = std::max(end_, p);
  learned_beyond_.insert(p);
  AdvanceLearnedPrefix();
  if (stored.value().kind() == Value::TRUNCATE) {
    ApplyTruncation(stored.value().truncate_to(), out);
  }
}

void Replica::ApplyTruncation(uint64_t to, Effects* out) {
  if (to <= metadata_.begin()) return;
  metadata_.set_begin(to);
  PersistMetadata(out);
  out->write.delete_before =
      std::max(out->write.delete_before.value_or(0), to);
  learned_beyond_.erase(learned_beyond_.begin(),
                        learned_beyond_.lower_bound(to));
  AdvanceLearnedPrefix();
}

void Replica::HandleHeartbeat(const LogMessage& m, absl::Time now,
                              Effects* out) {
  const auto& hb = m.heartbeat();
  ObserveBallot(hb.ballot());
  const bool current = hb.ballot() >= metadata_.promised();
  if (current) {
    leader_ = hb.ballot().node_id();
    last_leader_contact_ = now;
    known_committed_ = std::max(known_committed_, hb.committed());
  }
  auto& resp =
      *out->Send(config_.node_id, m.from()).mutable_heartbeat_response();
  resp.set_sequence(hb.sequence());
  resp.set_ok(current && voting());
  *resp.mutable_ballot() = current ? hb.ballot() : metadata_.promised();
  if (metadata_.status() == Metadata::RECOVERING &&
      metadata_.awaiting_higher_ballot() && current) {
    if (hb.ballot() > metadata_.recover_ballot()) {
      // This leader completed phase 1 above every ballot we may have voted
      // at, without us: our lost votes can no longer complete a quorum.
      // Learn what it has chosen so far, then vote.
      metadata_.set_awaiting_higher_ballot(false);
      metadata_.set_recover_end(
          std::max(metadata_.recover_end(), hb.committed()));
      PersistMetadata(out);
      out->sync = true;
      status_detail_ = absl::StrCat("RECOVERING: catching up [",
                                    next_unlearned_, ", ",
                                    metadata_.recover_end(), "]");
    } else {
      resp.set_needs_higher_ballot(true);
      *resp.mutable_recover_ballot() = metadata_.recover_ballot();
    }
  }
  if (metadata_.status() == Metadata::RECOVERING) MaybeFinishRecovery(out);
  MaybeFetch(now, out);
}

absl::StatusOr<std::vector<Action>> Replica::ReadLearned(uint64_t from,
                                                         uint64_t to,
                                                         size_t limit) {
  from = std::max(from, metadata_.begin());
  std::vector<Action> learned;
  if (from > to) return learned;
  auto actions = storage_->ReadRange(from, to, limit);
  if (!actions.ok()) {
    if (actions.status().code() == absl::StatusCode::kDataLoss) {
      Effects ignored;  // the caller's next Tick starts the re-fetch
      EnterRecoveryAfterCorruption(from, &ignored);
      if (!ignored.write.empty()) {
        absl::Status s = storage_->Write(ignored.write, /*sync=*/true);
        CHECK_OK(s);
      }
    }
    return actions.status();
  }
  for (auto& a : *actions) {
    if (a.learned()) learned.push_back(std::move(a));
  }
  return learned;
}

void Replica::HandleFetch(const LogMessage& m, Effects* out) {
  const auto& req = m.fetch_request();
  const size_t limit =
      std::min<size_t>(std::max<uint32_t>(req.max_actions(), 1),
                       config_.fetch_max_actions);
  auto& resp = *out->Send(config_.node_id, m.from()).mutable_fetch_response();
  resp.set_from_position(req.from_position());
  resp.set_to_position(req.to_position());
  resp.set_begin_position(metadata_.begin());
  uint64_t from = std::max(req.from_position(), metadata_.begin());
  uint64_t to = std::min(req.to_position(), learned_through());
  // Past the contiguous prefix only sparse positions may be learned; serve
  // the prefix (what catch-up needs) plus whatever else is learned.
  to = std::max(to, std::min(req.to_position(), end_));
  if (from > to) return;
  auto actions = storage_->ReadRange(from, to, limit);
  if (!actions.ok()) {
    EnterRecoveryAfterCorruption(from, out);
    return;
  }
  size_t bytes = 0;
  for (auto& a : *actions) {
    if (!a.learned()) continue;
    bytes += a.ByteSizeLong();
    if (resp.actions_size() > 0 && bytes > config_.max_message_bytes) break;
    *resp.add_actions() = std::move(a);
  }
}

void Replica::HandleFetchResponse(const LogMessage& m, absl::Time now,
                                  Effects* out) {
  const auto& resp = m.fetch_response();
  fetch_in_flight_ = false;
  const uint64_t unlearned_before = next_unlearned_;
  if (resp.begin_position() > metadata_.begin() &&
      resp.begin_position() > next_unlearned_) {
    // The peer truncated below this: a chosen truncate covers those
    // positions, so they need not (and cannot) be fetched.
    ApplyTruncation(resp.begin_position(), out);
  }
  for (const Action& a : resp.actions()) {
    if (!a.learned()) continue;
    ObserveBallot(a.ballot());
    Learn(a, out);
  }
  if (next_unlearned_ == unlearned_before) {
    // This peer could not fill our first gap (it may lack it too): ask
    // another one next time, so two lagging replicas never ask each other
    // forever.
    ++fetch_peer_index_;
  }
  if (metadata_.status() == Metadata::RECOVERING) MaybeFinishRecovery(out);
  MaybeFetch(now, out);
}

void Replica::MaybeFetch(absl::Time now, Effects* out) {
  uint64_t target = known_committed_;
  if (metadata_.status() == Metadata::RECOVERING) {
    target = std::max(target, metadata_.recover_end());
  }
  if (metadata_.status() == Metadata::EMPTY ||
      metadata_.status() == Metadata::STARTING) {
    return;
  }
  if (next_unlearned_ > target) return;
  if (fetch_in_flight_ && now - fetch_sent_ < config_.fetch_timeout) return;
  if (now - fetch_sent_ < config_.fetch_interval) return;

  std::vector<uint32_t> peers;
  for (uint32_t id : config_.replicas) {
    if (id != config_.node_id) peers.push_back(id);
  }
  if (peers.empty()) return;
  uint32_t peer;
  if (leader_.has_value() && *leader_ != config_.node_id &&
      fetch_peer_index_ % 2 == 0) {
    peer = *leader_;
  } else {
    peer = peers[(fetch_peer_index_ / 2) % peers.size()];
  }
  if (fetch_in_flight_) ++fetch_peer_index_;  // timed out: rotate
  auto& req = *out->Send(config_.node_id, peer).mutable_fetch_request();
  req.set_from_position(next_unlearned_);
  const uint64_t span = config_.fetch_max_actions - 1;
  req.set_to_position(target - next_unlearned_ > span ? next_unlearned_ + span
                                                      : target);
  req.set_max_actions(config_.fetch_max_actions);
  fetch_in_flight_ = true;
  fetch_sent_ = now;
}

void Replica::HandleRecover(const LogMessage& m, Effects* out) {
  auto& resp =
      *out->Send(config_.node_id, m.from()).mutable_recover_response();
  resp.set_status(metadata_.status());
  *resp.mutable_promised() = metadata_.promised();
  resp.set_begin(metadata_.begin());
  resp.set_end(end_);
}

void Replica::HandleRecoverResponse(const LogMessage& m, absl::Time now,
                                    Effects* out) {
  const auto& resp = m.recover_response();
  ObserveBallot(resp.promised());
  const auto status = metadata_.status();
  if (status != Metadata::EMPTY && status != Metadata::STARTING) return;
  recover_answers_[m.from()] = resp;

  const size_t peers = config_.replicas.size() - 1;
  size_t voting = 0, empty = 0, starting = 0, voting_without_data = 0;
  Ballot max_promised = metadata_.promised();
  uint64_t max_begin = 1, max_end = 0;
  for (const auto& [id, a] : recover_answers_) {
    if (a.promised() > max_promised) max_promised = a.promised();
    switch (a.status()) {
      case Metadata::VOTING:
        ++voting;
        if (a.end() == 0) ++voting_without_data;
        max_begin = std::max(max_begin, a.begin());
        max_end = std::max(max_end, a.end());
        break;
      case Metadata::EMPTY:
        ++empty;
        break;
      case Metadata::STARTING:
        ++starting;
        break;
      default:
        break;
    }
  }

  std::string detail;
  if (voting >= config_.quorum()) {
    // Recover [max_begin, max_end] from the voting quorum. Positions below
    // max_begin were truncated by a chosen truncate entry.
    metadata_.set_status(Metadata::RECOVERING);
    *metadata_.mutable_promised() = max_promised;
    metadata_.set_begin(std::max(metadata_.begin(), max_begin));
    metadata_.set_recover_begin(metadata_.begin());
    metadata_.set_recover_end(max_end);
    *metadata_.mutable_recover_ballot() = max_promised;
    metadata_.set_awaiting_higher_ballot(true);
    PersistMetadata(out);
    out->sync = true;
    // Records learned while EMPTY below the recovered begin are garbage.
    out->write.delete_before = metadata_.begin();
    learned_beyond_.erase(learned_beyond_.begin(),
                          learned_beyond_.lower_bound(metadata_.begin()));
    AdvanceLearnedPrefix();
    status_detail_ = absl::StrCat("RECOVERING: catching up [",
                                  metadata_.begin(), ", ", max_end,
                                  "] from ", voting, " voting replicas");
    LOG(INFO) << "replica " << config_.node_id << ": " << status_detail_;
    recover_answers_.clear();
    MaybeFinishRecovery(out);
    MaybeFetch(now, out);
    return;
  }
  if (recover_answers_.size() == peers && config_.auto_initialize) {
    const bool others_fresh = empty + starting + voting_without_data == peers;
    if (status == Metadata::EMPTY && others_fresh) {
      metadata_.set_status(Metadata::STARTING);
      PersistMetadata(out);
      out->sync = true;
      status_detail_ = "STARTING: every replica is empty; initialising";
      LOG(INFO) << "replica " << config_.node_id << ": " << status_detail_;
      recover_answers_.clear();
      return;
    }
    if (status == Metadata::STARTING && empty == 0 &&
        voting == voting_without_data) {
      metadata_.set_status(Metadata::VOTING);
      *metadata_.mutable_promised() = max_promised;
      PersistMetadata(out);
      out->sync = true;
      status_detail_.clear();
      LOG(INFO) << "replica " << config_.node_id
                << ": initialised a new log; now VOTING";
      recover_answers_.clear();
      return;
    }
  }
  if (recover_answers_.size() < peers) {
    detail = absl::StrCat(StatusName(status), ": ", recover_answers_.size(),
                          " of ", peers, " peers answered; ", voting,
                          " VOTING (", config_.quorum(),
                          " needed to recover)");
  } else if (!config_.auto_initialize && voting == 0) {
    detail = absl::StrCat(StatusName(status),
                          ": every replica is empty and auto-initialisation "
                          "is off; run `cairn-log init` on each replica");
  } else {
    detail = absl::StrCat(
        StatusName(status), ": refusing to start: ", voting,
        " replica(s) hold data but ", config_.quorum(),
        " voting replicas are needed to recover from; ", empty,
        " peer(s) are empty. Not re-initialising (that could lose "
        "acknowledged entries); waiting for more replicas");
  }
  if (detail != status_detail_) {
    status_detail_ = detail;
    if (recover_answers_.size() == peers) {
      LOG(WARNING) << "replica " << config_.node_id << ": " << status_detail_;
    } else {
      VLOG(1) << "replica " << config_.node_id << ": " << status_detail_;
    }
  }
}

void Replica::MaybeFinishRecovery(Effects* out) {
  if (metadata_.status() != Metadata::RECOVERING) return;
  if (metadata_.awaiting_higher_ballot()) return;
  if (next_unlearned_ <= metadata_.recover_end()) return;
  metadata_.set_status(Metadata::VOTING);
  metadata_.clear_recover_ballot();
  metadata_.set_awaiting_higher_ballot(false);
  PersistMetadata(out);
  out->sync = true;
  LOG(INFO) << "replica " << config_.node_id << ": recovered through "
            << metadata_.recover_end() << "; now VOTING";
  status_detail_.clear();
}

void Replica::EnterRecoveryAfterCorruption(uint64_t position, Effects* out) {
  LOG(ERROR) << "replica " << config_.node_id
             << ": stored record at or after position " << position
             << " failed its checksum; not voting until it is re-fetched";
  // Forget what we know past `position`: every action there is re-fetched
  // and overwritten by the learned value from a peer.
  const uint64_t from = std::max(position, metadata_.begin());
  if (next_unlearned_ > from) next_unlearned_ = from;
  learned_beyond_.clear();
  metadata_.set_status(Metadata::RECOVERING);
  metadata_.set_recover_begin(from);
  metadata_.set_recover_end(std::max(end_, known_committed_));
  // Our accept votes past `from` are gone but may still be counted by the
  // current leader: wait for a higher ballot (see Metadata.recover_ballot).
  *metadata_.mutable_recover_ballot() = metadata_.promised();
  metadata_.set_awaiting_higher_ballot(true);
  PersistMetadata(out);
  out->sync = true;
  status_detail_ =
      absl::StrCat("RECOVERING: checksum mismatch at position ", position,
                   "; re-fetching [", from, ", ", metadata_.recover_end(),
                   "]");
}

void Replica::Tick(absl::Time now, Effects* out) {
  const auto status = metadata_.status();
  if (status == Metadata::EMPTY || status == Metadata::STARTING) {
    if (now < recover_not_before_) {
      status_detail_ = "EMPTY: waiting out in-flight elections before "
                       "asking peers to recover";
      return;
    }
    if (now - last_recover_request_ >= config_.recover_interval) {
      last_recover_request_ = now;
      recover_answers_.clear();
      for (uint32_t id : config_.replicas) {
        if (id == config_.node_id) continue;
        out->Send(config_.node_id, id).mutable_recover_request();
      }
      if (config_.replicas.size() == 1 && config_.auto_initialize) {
        // A single-replica log initialises itself.
        metadata_.set_status(Metadata::VOTING);
        PersistMetadata(out);
        out->sync = true;
      }
    }
    return;
  }
  if (status == Metadata::RECOVERING) MaybeFinishRecovery(out);
  MaybeFetch(now, out);
  Scrub(now, out);
}

void Replica::Scrub(absl::Time now, Effects* out) {
  if (config_.scrub_batch == 0 || end_ == 0) return;
  if (now - last_scrub_ < config_.scrub_interval) return;
  last_scrub_ = now;
  if (scrub_cursor_ < metadata_.begin() || scrub_cursor_ > end_) {
    scrub_cursor_ = metadata_.begin();
  }
  const uint64_t from = scrub_cursor_;
  auto records = storage_->ReadRange(from, kMaxPosition, config_.scrub_batch);
  if (records.ok()) {
    scrub_cursor_ = records->empty() ? metadata_.begin()
                                     : records->back().position() + 1;
    return;
  }
  if (records.status().code() != absl::StatusCode::kDataLoss) return;
  // Find the first bad record of this batch.
  for (uint64_t p = from; p <= end_ && p < from + config_.scrub_batch; ++p) {
    auto one = storage_->Read(p);
    if (one.ok()) continue;
    if (one.status().code() != absl::StatusCode::kDataLoss) return;
    scrub_cursor_ = p + 1;
    if (metadata_.status() == Metadata::VOTING ||
        metadata_.status() == Metadata::RECOVERING) {
      EnterRecoveryAfterCorruption(p, out);
    }
    return;
  }
  scrub_cursor_ = from + config_.scrub_batch;
}

void Replica::CheckInvariants() const {
  CHECK_GE(next_unlearned_, metadata_.begin());
  if (!learned_beyond_.empty()) {
    CHECK_GT(*learned_beyond_.begin(), next_unlearned_);
  }
  CHECK(metadata_.status() == Metadata::VOTING ||
        metadata_.status() == Metadata::EMPTY ||
        metadata_.status() == Metadata::RECOVERING ||
        metadata_.status() == Metadata::STARTING)
      << "bad status " << metadata_.status();
}

}  // namespace cairn::log
