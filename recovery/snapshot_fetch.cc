#include "recovery/snapshot_fetch.h"

#include <optional>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cairn/v1/history.pb.h"
#include "common/crc32c.h"
#include "common/http_client.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "master/state.h"
#include "recovery/internal/files.h"

namespace cairn::recovery {
namespace {

std::string SerializeDeterministic(const v1::MasterSnapshot& snapshot) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    snapshot.SerializeToCodedStream(&coded);
  }
  return out;
}

uint32_t TransferChecksum(uint64_t position, absl::string_view snapshot) {
  std::string prefix;
  internal::PutFixed64(&prefix, position);
  return Crc32cExtend(Crc32c(prefix), snapshot);
}

// FetchNewestSnapshot, giving up between peers once `cancelled` says so.
absl::StatusOr<FetchedSnapshot> Fetch(const std::vector<SnapshotPeer>& peers,
                                      uint64_t min_position,
                                      const SnapshotFetchOptions& options,
                                      const std::function<bool()>& cancelled) {
  std::optional<FetchedSnapshot> best;
  std::vector<std::string> outcomes;
  const std::string target =
      absl::StrCat(kSnapshotPath, "?min_position=", min_position);
  for (const SnapshotPeer& peer : peers) {
    if (cancelled && cancelled()) {
      return absl::CancelledError("the snapshot fetch was cancelled");
    }
    const std::string name = peer.ToString();
    auto outcome = [&](absl::string_view what) {
      outcomes.push_back(absl::StrCat(name, ": ", what));
    };
    http::ClientOptions client_options;
    client_options.max_body_bytes = options.max_body_bytes;
    http::Client client(client_options);
    absl::StatusOr<http::Response> response = client.Request(
        "GET", peer.host, peer.port, target,
        {{"Accept", kSnapshotContentType}, {"Connection", "close"}}, "",
        options.request_timeout);
    if (!response.ok()) {
      outcome(response.status().ToString());
      continue;
    }
    if (response->status != 200) {
      outcome(absl::StrCat("HTTP ", response->status, " ", response->body));
      continue;
    }
    absl::StatusOr<StoredSnapshot> decoded =
        DecodeSnapshotTransfer(response->body);
    if (!decoded.ok()) {
      outcome(decoded.status().ToString());
      continue;
    }
    const std::string* header = response->headers.Find(kSnapshotPositionHeader);
    uint64_t header_position = 0;
    if (header != nullptr && (!absl::SimpleAtoi(*header, &header_position) ||
                              header_position != decoded->position)) {
      outcome(absl::StrCat("header ", kSnapshotPositionHeader, ": ", *header,
                           " but the body is at position ", decoded->position));
      continue;
    }
    if (decoded->position < min_position) {
      outcome(absl::StrCat("its snapshot at ", decoded->position,
                           " is older than ", min_position));
      continue;
    }
    outcome(absl::StrCat("snapshot at ", decoded->position));
    if (!best.has_value() || decoded->position > best->position) {
      best = FetchedSnapshot{decoded->position, std::move(decoded->snapshot),
                             name};
    }
  }
  if (!best.has_value()) {
    return absl::UnavailableError(
        absl::StrCat("no peer offered a usable snapshot at or after position ",
                     min_position, " (", absl::StrJoin(outcomes, "; "), ")"));
  }
  return *std::move(best);
}

}  // namespace

// ---- wire format ------------------------------------------------------------

std::string EncodeSnapshotTransfer(uint64_t position,
                                   const v1::MasterSnapshot& snapshot) {
  v1::SnapshotTransfer transfer;
  transfer.set_format_version(kSnapshotTransferVersion);
  transfer.set_position(position);
  transfer.set_snapshot(SerializeDeterministic(snapshot));
  transfer.set_crc32c(TransferChecksum(position, transfer.snapshot()));
  return transfer.SerializeAsString();
}

absl::StatusOr<StoredSnapshot> DecodeSnapshotTransfer(absl::string_view body) {
  auto corrupt = [](absl::string_view why) {
    return absl::DataLossError(absl::StrCat("snapshot transfer: ", why));
  };
  v1::SnapshotTransfer transfer;
  if (!transfer.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return corrupt("the body does not parse");
  }
  if (!transfer.has_format_version() || !transfer.has_position() ||
      !transfer.has_snapshot() || !transfer.has_crc32c()) {
    return corrupt("a field is missing");
  }
  if (transfer.format_version() != kSnapshotTransferVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("snapshot transfer: unknown format version ",
                     transfer.format_version()));
  }
  if (transfer.position() == 0) return corrupt("position 0");
  if (TransferChecksum(transfer.position(), transfer.snapshot()) !=
      transfer.crc32c()) {
    return corrupt("checksum mismatch");
  }
  StoredSnapshot out;
  out.position = transfer.position();
  if (!out.snapshot.ParseFromString(transfer.snapshot())) {
    return corrupt("the snapshot does not parse");
  }
  if (out.snapshot.last_applied().position() > out.position) {
    return corrupt(absl::StrCat("the snapshot at position ", out.position,
                                " holds an event at position ",
                                out.snapshot.last_applied().position()));
  }
  absl::StatusOr<master::MasterState> state =
      master::MasterState::FromSnapshot(out.snapshot);
  if (!state.ok()) {
    return corrupt(absl::StrCat("the snapshot does not restore: ",
                                state.status().message()));
  }
  return out;
}

http::Response SnapshotResponse(
    const SnapshotStore& store,
    const std::map<std::string, std::string>& query) {
  uint64_t min_position = 0;
  auto min = query.find("min_position");
  if (min != query.end() && !absl::SimpleAtoi(min->second, &min_position)) {
    return http::Response::Error(400,
                                 absl::StrCat("min_position '", min->second,
                                              "' is not an unsigned integer"));
  }
  absl::StatusOr<StoredSnapshot> latest = store.Latest();
  if (absl::IsNotFound(latest.status())) {
    return http::Response::Error(404, "this master has no snapshot");
  }
  if (!latest.ok())
    return http::Response::Error(500, latest.status().message());
  if (latest->position < min_position) {
    return http::Response::Error(
        404, absl::StrCat("this master's newest snapshot is at position ",
                          latest->position, ", before ", min_position));
  }
  http::Response response;
  response.headers.Set("Content-Type", kSnapshotContentType);
  response.headers.Set(kSnapshotPositionHeader, absl::StrCat(latest->position));
  response.body = EncodeSnapshotTransfer(latest->position, latest->snapshot);
  return response;
}

// ---- client -----------------------------------------------------------------

std::string SnapshotPeer::ToString() const {
  return host.find(':') != std::string::npos
             ? absl::StrCat("[", host, "]:", port)
             : absl::StrCat(host, ":", port);
}

absl::StatusOr<FetchedSnapshot> FetchNewestSnapshot(
    const std::vector<SnapshotPeer>& peers, uint64_t min_position,
    const SnapshotFetchOptions& options) {
  return Fetch(peers, min_position, options, nullptr);
}

absl::Status InstallSnapshot(const FetchedSnapshot& fetched,
                             SnapshotStore* store) {
  return store->Write(fetched.position, fetched.snapshot);
}

SnapshotFetcher::SnapshotFetcher(std::vector<SnapshotPeer> peers,
                                 SnapshotFetchOptions options)
    : peers_(std::move(peers)), options_(options), thread_([this] { Run(); }) {}

SnapshotFetcher::~SnapshotFetcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

bool SnapshotFetcher::Start(uint64_t min_position, Done done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (busy_ || stopping_) return false;
    busy_ = true;
    pending_ = true;
    min_position_ = min_position;
    done_ = std::move(done);
  }
  cv_.notify_all();
  return true;
}

bool SnapshotFetcher::busy() const {
  std::lock_guard<std::mutex> lock(mu_);
  return busy_;
}

void SnapshotFetcher::Run() {
  for (;;) {
    uint64_t min_position = 0;
    Done done;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || pending_; });
      if (!pending_) return;  // stopping, nothing accepted
      pending_ = false;
      min_position = min_position_;
      done = std::move(done_);
    }
    absl::StatusOr<FetchedSnapshot> result =
        Fetch(peers_, min_position, options_, [this] {
          std::lock_guard<std::mutex> lock(mu_);
          return stopping_;
        });
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_ && result.ok()) {
        result = absl::CancelledError("the snapshot fetch was cancelled");
      }
    }
    done(std::move(result));
    std::lock_guard<std::mutex> lock(mu_);
    busy_ = false;
  }
}

}  // namespace cairn::recovery
