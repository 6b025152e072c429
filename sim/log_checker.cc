#include "sim/log_checker.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace cairn::sim {

using cairn::v1::Action;
using cairn::v1::Ballot;
using cairn::v1::LogMessage;
using cairn::v1::Metadata;
using cairn::v1::Value;
using log::BallotString;

bool SameValue(const Value& a, const Value& b) {
  if (a.kind() != b.kind() || a.truncate_to() != b.truncate_to() ||
      a.entries_size() != b.entries_size()) {
    return false;
  }
  for (int i = 0; i < a.entries_size(); ++i) {
    if (a.entries(i) != b.entries(i)) return false;
  }
  return true;
}

std::string ValueString(const Value& v) {
  switch (v.kind()) {
    case Value::NOOP:
      return "NOOP";
    case Value::TRUNCATE:
      return absl::StrCat("TRUNCATE(to ", v.truncate_to(), ")");
    case Value::APPEND:
      return absl::StrCat("APPEND[", absl::StrJoin(v.entries(), ","), "]");
    default:
      return absl::StrCat("KIND", static_cast<int>(v.kind()));
  }
}

LogChecker::LogChecker(const std::vector<uint32_t>& replicas) {
  for (uint32_t id : replicas) promised_[id] = PromisedMarks{};
}

void LogChecker::Fail(const std::string& message) {
  if (failure_.empty()) failure_ = message;
}

void LogChecker::OnLearned(uint32_t node, const Action& action,
                           const char* source) {
  const uint64_t p = action.position();
  auto [it, inserted] = learned_.emplace(p, action.value());
  if (inserted) {
    learned_by_[p] = absl::StrCat("node ", node, " (", source, ", ballot ",
                                  BallotString(action.ballot()), ")");
    return;
  }
  if (!SameValue(it->second, action.value())) {
    Fail(absl::StrCat("AGREEMENT violated at position ", p, ": ",
                      learned_by_[p], " learned ", ValueString(it->second),
                      " but node ", node, " (", source, ", ballot ",
                      BallotString(action.ballot()), ") learned ",
                      ValueString(action.value())));
  }
}

void LogChecker::OnEmitted(uint32_t node, Metadata::Status status_before,
                           const std::vector<LogMessage>& messages,
                           const char* input) {
  if (status_before == Metadata::VOTING) return;
  ++inputs_while_not_voting_[node];
  for (const LogMessage& m : messages) {
    if (m.from() != node) continue;
    const char* vote = nullptr;
    if (m.has_promise_response()) vote = "PromiseResponse";
    if (m.has_accept_response()) vote = "AcceptResponse";
    if (m.has_heartbeat_response() && m.heartbeat_response().ok()) {
      vote = "HeartbeatResponse(ok)";
    }
    if (vote != nullptr) {
      Fail(absl::StrCat("NON-VOTING replica voted: node ", node, " (status ",
                        Metadata::Status_Name(status_before),
                        ") answered ", input, " with a ", vote, " to node ",
                        m.to(), ": ", m.ShortDebugString()));
      return;
    }
  }
}

void LogChecker::OnWrite(uint32_t node, const log::WriteBatch& batch,
                         bool sync) {
  for (const Action& a : batch.actions) {
    if (a.learned()) OnLearned(node, a, "stored");
  }
  PromisedMarks& marks = promised_[node];
  if (batch.metadata.has_value()) {
    const Ballot& promised = batch.metadata->promised();
    if (promised < marks.last_written) {
      Fail(absl::StrCat("PROMISED decreased: node ", node, " wrote promised ",
                        BallotString(promised), " after writing ",
                        BallotString(marks.last_written)));
    }
    marks.last_written = promised;
  }
  if (sync) marks.durable = marks.last_written;
}

void LogChecker::OnCrash(uint32_t node,
                         const std::optional<Metadata>& durable) {
  PromisedMarks& marks = promised_[node];
  const Ballot promised = durable.has_value() ? durable->promised() : Ballot();
  if (promised < marks.durable) {
    Fail(absl::StrCat("PROMISED decreased across a crash: node ", node,
                      " had durably promised ", BallotString(marks.durable),
                      " but its disk holds ", BallotString(promised)));
  }
  marks.durable = promised;
  marks.last_written = promised;
}

void LogChecker::OnWipe(uint32_t node) { promised_[node] = PromisedMarks{}; }

void LogChecker::OnRestart(uint32_t node, const Ballot& promised) {
  const PromisedMarks& marks = promised_[node];
  if (promised < marks.durable) {
    Fail(absl::StrCat("PROMISED decreased across a restart: node ", node,
                      " had durably promised ", BallotString(marks.durable),
                      " but restarted with ", BallotString(promised)));
  }
}

void LogChecker::OnAppendAcked(uint64_t leader_key, uint64_t submit_seq,
                               const std::string& value, uint64_t position,
                               uint32_t index) {
  auto it = learned_.find(position);
  if (it == learned_.end()) {
    Fail(absl::StrCat("ACK of '", value, "' at position ", position,
                      " before any replica learned that position"));
    return;
  }
  const Value& v = it->second;
  if (v.kind() != Value::APPEND || static_cast<int>(index) >= v.entries_size() ||
      v.entries(index) != value) {
    Fail(absl::StrCat("ACK MISMATCH: '", value, "' acknowledged at position ",
                      position, " index ", index, " but the position holds ",
                      ValueString(v)));
    return;
  }
  auto last = last_ack_.find(leader_key);
  if (last != last_ack_.end()) {
    const AckOrder& prev = last->second;
    const bool in_order =
        submit_seq > prev.submit_seq &&
        (position > prev.position ||
         (position == prev.position && index > prev.index));
    if (!in_order) {
      Fail(absl::StrCat("ACK ORDER: leader incarnation ", leader_key,
                        " acknowledged request #", submit_seq, " at (",
                        position, ", ", index, ") after request #",
                        prev.submit_seq, " at (", prev.position, ", ",
                        prev.index, ")"));
    }
  }
  last_ack_[leader_key] = AckOrder{submit_seq, position, index};
}

uint64_t LogChecker::inputs_while_not_voting(uint32_t node) const {
  auto it = inputs_while_not_voting_.find(node);
  return it == inputs_while_not_voting_.end() ? 0 : it->second;
}

}  // namespace cairn::sim
