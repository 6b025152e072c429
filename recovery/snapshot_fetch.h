// Snapshot transfer: how a master whose own snapshots no longer reach the
// start of the replicated log gets a snapshot from a peer master.
//
// Why: every master snapshots its state every --snapshot_interval events and
// the leader truncates the log below its previous snapshot (master/master.h).
// A master that comes back with a wiped --work_dir, or after being down
// while the log was truncated past its newest snapshot, finds the log
// beginning at some position B > applied + 1: it cannot fold positions
// 1..B-1 any more. Any snapshot at a position P >= B - 1 closes the gap
// (the log still holds P + 1 onwards, or will once it is learned), and the
// other masters have one: the leader truncated below one of its own.
//
// Wire (served by every master, leader or standby):
//
//   GET /master/snapshot[?min_position=N]
//     200  Content-Type: application/x-protobuf,
//          X-Cairn-Snapshot-Position: P,
//          body: a cairn.v1.SnapshotTransfer (proto/cairn/v1/history.proto)
//          holding the newest snapshot that verifies in the master's store
//     404  the store holds no usable snapshot, or its newest is older than N
//     400  min_position is not an unsigned integer
//
// The transfer carries a CRC-32C over the position and the snapshot bytes,
// end to end from the sender's verified store to the receiver's store.
//
// Client: FetchNewestSnapshot asks each peer in turn, each request bounded
// by a timeout and a body limit, verifies every answer (checksum, version,
// the snapshot parses, covers no event beyond its position, and
// MasterState::FromSnapshot accepts it) and returns the newest one.
// InstallSnapshot writes it durably to the local SnapshotStore, after which
// the master rebuilds from it (newest snapshot + the log after it).
//
// Threads: the network part runs on SnapshotFetcher's own thread, not on the
// master thread. Asking up to (masters - 1) peers can take several request
// timeouts when peers are down or slow, and the master thread meanwhile has
// to keep answering /master/replica, following leadership and folding the
// log; so the master starts a fetch, the fetcher's thread reports the
// result, and the master posts it back to its own thread, which alone owns
// the SnapshotStore (its Write must not run concurrently with anything
// else) and does InstallSnapshot + rebuild there (one durable write, as
// costly as a snapshot it takes itself).
//
// Thread safety: the free functions are safe from any thread (each uses its
// own HTTP client); SnapshotResponse reads the store, so it must not run
// concurrently with a Write on it. A SnapshotFetcher's methods may be called
// from any thread.

#ifndef CAIRN_RECOVERY_SNAPSHOT_FETCH_H_
#define CAIRN_RECOVERY_SNAPSHOT_FETCH_H_

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "cairn/v1/master.pb.h"
#include "common/http_message.h"
#include "recovery/snapshot_store.h"

namespace cairn::recovery {

inline constexpr uint32_t kSnapshotTransferVersion = 1;
inline constexpr char kSnapshotPath[] = "/master/snapshot";
inline constexpr char kSnapshotContentType[] = "application/x-protobuf";
inline constexpr char kSnapshotPositionHeader[] = "X-Cairn-Snapshot-Position";

// ---- wire format ------------------------------------------------------------

// A serialized SnapshotTransfer holding `snapshot` at `position`.
std::string EncodeSnapshotTransfer(uint64_t position,
                                   const v1::MasterSnapshot& snapshot);

// Parses and verifies a SnapshotTransfer body. Returns the snapshot and its
// position; kDataLoss when it does not parse, lacks a field, fails its
// checksum, names position 0, holds an event beyond its position, or
// MasterState::FromSnapshot refuses it; kFailedPrecondition for another
// format_version.
absl::StatusOr<StoredSnapshot> DecodeSnapshotTransfer(absl::string_view body);

// The answer to GET /master/snapshot with query parameters `query` (see the
// file comment) from `store`: 200, 404, 400, or 500 when the store cannot
// be read.
http::Response SnapshotResponse(
    const SnapshotStore& store,
    const std::map<std::string, std::string>& query);

// ---- client -----------------------------------------------------------------

// A peer master's HTTP address.
struct SnapshotPeer {
  std::string host;
  uint16_t port = 0;
  std::string ToString() const;  // host:port ([host]:port for IPv6)
};

struct SnapshotFetchOptions {
  // Bounds one request to one peer (connect, send, whole response).
  absl::Duration request_timeout = absl::Seconds(2);
  // A larger response body is refused (kResourceExhausted for that peer).
  size_t max_body_bytes = size_t{256} << 20;
};

struct FetchedSnapshot {
  uint64_t position = 0;  // covers every log entry at positions <= position
  v1::MasterSnapshot snapshot;
  std::string peer;  // SnapshotPeer::ToString() of the peer that sent it
};

// Asks each of `peers` for its newest snapshot at a position >=
// `min_position` and returns the newest that verifies (the first peer's on a
// tie). kUnavailable when none did; the message says, per peer, why
// (unreachable, timed out, 404, corrupt, too large, older). Takes at most
// peers.size() * options.request_timeout.
absl::StatusOr<FetchedSnapshot> FetchNewestSnapshot(
    const std::vector<SnapshotPeer>& peers, uint64_t min_position,
    const SnapshotFetchOptions& options = {});

// Durably writes `fetched` into `store` (SnapshotStore::Write: atomic, synced;
// it replaces a snapshot at the same position). Returns the store's error.
// REQUIRES: nothing else uses `store` meanwhile.
absl::Status InstallSnapshot(const FetchedSnapshot& fetched,
                             SnapshotStore* store);

// Runs FetchNewestSnapshot on its own thread, one fetch at a time.
class SnapshotFetcher {
 public:
  using Done = std::function<void(absl::StatusOr<FetchedSnapshot>)>;

  explicit SnapshotFetcher(std::vector<SnapshotPeer> peers,
                           SnapshotFetchOptions options = {});
  SnapshotFetcher(const SnapshotFetcher&) = delete;
  SnapshotFetcher& operator=(const SnapshotFetcher&) = delete;
  // Cancels a fetch in progress (it stops after the request in flight, so
  // this waits at most one request_timeout; its `done` gets kCancelled) and
  // joins the thread.
  ~SnapshotFetcher();

  // Starts a fetch of a snapshot at a position >= `min_position`. `done` runs
  // once, on the fetcher's thread, with FetchNewestSnapshot's result; it
  // must not block for long nor destroy this fetcher. Returns false, and
  // drops `done`, when a fetch is already in progress.
  bool Start(uint64_t min_position, Done done);

  // True from an accepted Start until its `done` has returned.
  bool busy() const;

 private:
  void Run();

  const std::vector<SnapshotPeer> peers_;
  const SnapshotFetchOptions options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;      // guarded by mu_
  bool busy_ = false;          // guarded by mu_
  bool pending_ = false;       // guarded by mu_: Start() handed over a fetch
  uint64_t min_position_ = 0;  // guarded by mu_
  Done done_;                  // guarded by mu_
  std::thread thread_;         // last: starts after the fields above exist
};

}  // namespace cairn::recovery

#endif  // CAIRN_RECOVERY_SNAPSHOT_FETCH_H_
