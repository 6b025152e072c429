// Small POSIX file helpers for recovery/: durable whole-file writes
// (write a temporary, fsync, rename, fsync the directory), an append-only
// file with explicit sync, positioned reads, directory listing, and
// little-endian fixed-width integer coding for the file headers.
//
// Errors carry the path and come from absl::ErrnoToStatus (kNotFound for a
// missing file, kInternal / kUnavailable etc. by errno). No exceptions.
//
// Thread safety: the free functions are safe from any thread; an AppendFile
// or a ReadableFile is used by one thread at a time.

#ifndef CAIRN_RECOVERY_INTERNAL_FILES_H_
#define CAIRN_RECOVERY_INTERNAL_FILES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cairn::recovery::internal {

// Creates `dir` and its missing parents.
absl::Status CreateDirs(const std::string& dir);

// fsyncs the directory itself, so renames and unlinks in it are durable.
absl::Status SyncDir(const std::string& dir);

// The names (not paths) of the entries of `dir`, sorted, without "." and "..".
absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir);

// Writes `data` to `tmp_path`, fsyncs it, renames it to `path` and fsyncs
// the directory of `path`. A crash at any point leaves either the old `path`
// (or none) or the new one, never a partial file under `path`.
// REQUIRES: both paths are in the same directory.
absl::Status WriteFileDurably(const std::string& path,
                              const std::string& tmp_path,
                              absl::string_view data);

// The whole content of `path`.
absl::StatusOr<std::string> ReadFile(const std::string& path);

absl::StatusOr<uint64_t> FileSize(const std::string& path);

// Unlinks `path`; OK if it did not exist.
absl::Status RemoveFile(const std::string& path);

absl::Status RenameFile(const std::string& from, const std::string& to);

// A file written front to back. Not durable until Sync().
class AppendFile {
 public:
  // Creates (or truncates) `path`.
  static absl::StatusOr<AppendFile> Create(const std::string& path);

  AppendFile(AppendFile&& other) noexcept;
  AppendFile& operator=(AppendFile&& other) noexcept;
  AppendFile(const AppendFile&) = delete;
  AppendFile& operator=(const AppendFile&) = delete;
  ~AppendFile();

  absl::Status Append(absl::string_view data);
  absl::Status Sync();
  absl::Status Close();
  // Bytes appended so far (the offset of the next byte).
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  AppendFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

// A file read at offsets (pread).
class ReadableFile {
 public:
  static absl::StatusOr<ReadableFile> Open(const std::string& path);

  ReadableFile(ReadableFile&& other) noexcept;
  ReadableFile& operator=(ReadableFile&& other) noexcept;
  ReadableFile(const ReadableFile&) = delete;
  ReadableFile& operator=(const ReadableFile&) = delete;
  ~ReadableFile();

  // Exactly `length` bytes at `offset`; kDataLoss if the file ends first.
  absl::StatusOr<std::string> Read(uint64_t offset, uint64_t length) const;
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  ReadableFile(std::string path, int fd, uint64_t size)
      : path_(std::move(path)), fd_(fd), size_(size) {}

  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

// Little-endian fixed-width coding.
void PutFixed32(std::string* out, uint32_t value);
void PutFixed64(std::string* out, uint64_t value);
// REQUIRES: at least 4 (8) readable bytes at `p`.
uint32_t DecodeFixed32(const char* p);
uint64_t DecodeFixed64(const char* p);

}  // namespace cairn::recovery::internal

#endif  // CAIRN_RECOVERY_INTERNAL_FILES_H_
