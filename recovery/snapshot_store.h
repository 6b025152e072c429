// SnapshotStore: the master's snapshots (cairn.v1.MasterSnapshot) in one
// directory, one file per log position covered.
//
// A snapshot "at position P" is the folded state of every entry at positions
// <= P; recovery is the newest snapshot plus the entries after P. Files are
// written atomically (temporary file, fsync, rename, fsync of the directory),
// so a crash leaves either the previous set of snapshots or the previous set
// plus the new one; leftover temporaries are deleted by Open().
//
// File `snapshot-<P, 20 digits>.snap`, little-endian:
//
//   offset  size  field
//        0     8  magic "CAIRNSNP"
//        8     4  format version (kFormatVersion)
//       12     8  position P (must match the file name)
//       20     8  payload length N
//       28     4  CRC-32C of bytes [0, 28) followed by the payload
//       32     N  payload: the MasterSnapshot, deterministically serialized
//
// Anything else (short file, trailing bytes, wrong magic, version, position
// or checksum, unparsable payload) is kDataLoss. Readers that look for "the
// newest usable" snapshot (Latest, AtOrBefore) skip such files and fall back
// to older ones, counting them in corrupt_skipped().
//
// Thread safety: Write and Retain must not run concurrently with anything
// else on the same store; the const readers may run concurrently with each
// other. One store per directory (no cross-process locking).

#ifndef CAIRN_RECOVERY_SNAPSHOT_STORE_H_
#define CAIRN_RECOVERY_SNAPSHOT_STORE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cairn/v1/master.pb.h"

namespace cairn::recovery {

struct StoredSnapshot {
  uint64_t position = 0;  // covers every entry at positions <= position
  v1::MasterSnapshot snapshot;
};

class SnapshotStore {
 public:
  static constexpr uint32_t kFormatVersion = 1;
  static constexpr size_t kHeaderSize = 32;

  // Opens the store in `dir`, creating the directory if needed, and deletes
  // temporaries left by interrupted writes. Errors: I/O errors by errno.
  static absl::StatusOr<std::unique_ptr<SnapshotStore>> Open(std::string dir);

  SnapshotStore(const SnapshotStore&) = delete;
  SnapshotStore& operator=(const SnapshotStore&) = delete;

  // Durably writes `snapshot` as the state at `position`, replacing any
  // snapshot at the same position atomically. Returns kInvalidArgument when
  // position is 0 or below snapshot.last_applied().position(); I/O errors by
  // errno (nothing is left under the final name then).
  absl::Status Write(uint64_t position, const v1::MasterSnapshot& snapshot);

  // Positions of the snapshot files present, ascending (not verified).
  absl::StatusOr<std::vector<uint64_t>> Positions() const;

  // Reads and verifies the snapshot at `position`. kNotFound if there is no
  // such file; kDataLoss if it fails verification (see the file comment).
  absl::StatusOr<StoredSnapshot> Read(uint64_t position) const;

  // The newest snapshot that verifies. kNotFound when there is none.
  absl::StatusOr<StoredSnapshot> Latest() const;

  // The newest snapshot that verifies at a position <= `position`.
  // kNotFound when there is none.
  absl::StatusOr<StoredSnapshot> AtOrBefore(uint64_t position) const;

  // Retention: keeps the newest `keep` snapshots that verify and deletes the
  // snapshot files older than the oldest kept one, plus every file that fails
  // verification with kDataLoss. keep == 0 deletes nothing but corrupt files.
  // Returns the number of files deleted.
  absl::StatusOr<int> Retain(size_t keep);

  // Deletes the snapshots at positions < `position`, except that the newest
  // snapshot that verifies is never deleted. Returns the number deleted.
  absl::StatusOr<int> DeleteBefore(uint64_t position);

  // Sum of the sizes of the snapshot files.
  absl::StatusOr<uint64_t> DiskBytes() const;

  // How many corrupt files Latest/AtOrBefore have skipped so far.
  uint64_t corrupt_skipped() const { return corrupt_skipped_.load(); }
  const std::string& dir() const { return dir_; }

  // The file holding the snapshot at `position` (for tests and tools).
  std::string PathFor(uint64_t position) const;

 private:
  explicit SnapshotStore(std::string dir) : dir_(std::move(dir)) {}

  std::string dir_;
  mutable std::atomic<uint64_t> corrupt_skipped_{0};
};

}  // namespace cairn::recovery

#endif  // CAIRN_RECOVERY_SNAPSHOT_STORE_H_
