#include "log/replicated_log.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace cairn::log {

namespace {
constexpr size_t kReadPagePositions = 4096;
}  // namespace

std::vector<Entry> EntriesOf(const Action& action) {
  std::vector<Entry> entries;
  if (action.value().kind() != Value::APPEND) return entries;
  entries.reserve(action.value().entries_size());
  for (int i = 0; i < action.value().entries_size(); ++i) {
    entries.push_back({action.position(), static_cast<uint32_t>(i),
                       action.value().entries(i)});
  }
  return entries;
}

absl::StatusOr<std::unique_ptr<ReplicatedLog>> ReplicatedLog::Open(
    LogServerOptions options, LeadershipListener leadership) {
  auto server = LogServer::Create(std::move(options));
  if (!server.ok()) return server.status();
  std::unique_ptr<ReplicatedLog> log(new ReplicatedLog(*std::move(server)));
  log->SetLeadershipListener(std::move(leadership));
  absl::Status started = log->server_->Start();
  if (!started.ok()) return started;
  return log;
}

ReplicatedLog::ReplicatedLog(std::unique_ptr<LogServer> server)
    : server_(std::move(server)) {}

ReplicatedLog::~ReplicatedLog() { Stop(); }

void ReplicatedLog::Stop() { server_->Stop(); }

void ReplicatedLog::Append(std::string entry, AppendDone done) {
  server_->Append(std::move(entry),
                  [done = std::move(done)](const AppendResult& result) {
                    if (!result.status.ok()) {
                      done(result.status);
                    } else {
                      done(Position{result.position, result.index});
                    }
                  });
}

void ReplicatedLog::Truncate(uint64_t to, TruncateDone done) {
  server_->Truncate(to, [done = std::move(done)](const AppendResult& result) {
    if (!result.status.ok()) {
      done(result.status);
    } else {
      done(result.position);
    }
  });
}

absl::StatusOr<ReadPage> ReplicatedLog::Read(uint64_t from, uint64_t to,
                                             size_t max_positions) {
  if (max_positions == 0) {
    return absl::InvalidArgumentError("max_positions must be at least 1");
  }
  from = std::max<uint64_t>(from, 1);
  ReadPage page;
  page.next = from;
  if (from > to) return page;
  auto actions = server_->Read(from, to, max_positions);
  if (!actions.ok()) return actions.status();
  // Learned positions are contiguous from `begin`, so a gap at the front
  // means the positions there were truncated.
  uint64_t begin = 0;
  if (!actions->empty() && actions->front().position() > from) {
    begin = actions->front().position();
  } else if (actions->empty() && from < server_->GetStatus().begin) {
    begin = server_->GetStatus().begin;
  }
  if (begin != 0) {
    return absl::OutOfRangeError(
        absl::StrCat("positions from ", from, " to ", begin - 1,
                     " were truncated; the log begins at position ", begin));
  }
  for (const Action& action : *actions) {
    for (Entry& entry : EntriesOf(action)) {
      page.entries.push_back(std::move(entry));
    }
  }
  if (!actions->empty()) page.next = actions->back().position() + 1;
  return page;
}

absl::StatusOr<std::vector<Entry>> ReplicatedLog::Read(uint64_t from,
                                                       uint64_t to) {
  std::vector<Entry> entries;
  from = std::max<uint64_t>(from, 1);
  while (from <= to) {
    auto page = Read(from, to, kReadPagePositions);
    if (!page.ok()) return page.status();
    for (Entry& entry : page->entries) entries.push_back(std::move(entry));
    // A short page reached the end of what is learned.
    if (page->next - from < kReadPagePositions) break;
    from = page->next;
  }
  return entries;
}

absl::StatusOr<uint64_t> ReplicatedLog::WaitForLearned(uint64_t position,
                                                       absl::Time deadline) {
  return server_->WaitForLearned(position, deadline);
}

void ReplicatedLog::SetLeadershipListener(LeadershipListener listener) {
  if (!listener) {
    server_->SetLeadershipListener(nullptr);
    return;
  }
  server_->SetLeadershipListener(
      [listener = std::move(listener)](const LeadershipChange& change) {
        listener(change.became_leader, change.ballot);
      });
}

}  // namespace cairn::log
