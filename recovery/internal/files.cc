#include "recovery/internal/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"

namespace cairn::recovery::internal {
namespace {

absl::Status Errno(int error, absl::string_view what, const std::string& path) {
  return absl::ErrnoToStatus(error, absl::StrCat(what, " ", path));
}

std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

absl::Status WriteAll(int fd, absl::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno(errno, "write", path);
    }
    data.remove_prefix(size_t(n));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CreateDirs(const std::string& dir) {
  if (dir.empty()) return absl::InvalidArgumentError("empty directory path");
  std::string prefix;
  size_t start = 0;
  while (start <= dir.size()) {
    size_t slash = dir.find('/', start);
    if (slash == std::string::npos) slash = dir.size();
    prefix = dir.substr(0, slash);
    start = slash + 1;
    if (prefix.empty()) continue;
    if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
      return Errno(errno, "mkdir", prefix);
    }
  }
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return Errno(errno, "stat", dir);
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(dir, " is not a directory"));
  }
  return absl::OkStatus();
}

absl::Status SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno(errno, "open", dir);
  absl::Status status;
  if (::fsync(fd) != 0) status = Errno(errno, "fsync", dir);
  ::close(fd);
  return status;
}

absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return Errno(errno, "opendir", dir);
  std::vector<std::string> names;
  while (struct dirent* entry = ::readdir(d)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

absl::Status WriteFileDurably(const std::string& path,
                              const std::string& tmp_path,
                              absl::string_view data) {
  int fd =
      ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno(errno, "open", tmp_path);
  absl::Status status = WriteAll(fd, data, tmp_path);
  if (status.ok() && ::fsync(fd) != 0) status = Errno(errno, "fsync", tmp_path);
  if (::close(fd) != 0 && status.ok()) status = Errno(errno, "close", tmp_path);
  if (!status.ok()) {
    ::unlink(tmp_path.c_str());
    return status;
  }
  if (::rename(tmp_path.c_str(), path.c_str()) != 0) {
    status = Errno(errno, "rename to " + path, tmp_path);
    ::unlink(tmp_path.c_str());
    return status;
  }
  return SyncDir(DirOf(path));
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  absl::StatusOr<ReadableFile> file = ReadableFile::Open(path);
  if (!file.ok()) return file.status();
  return file->Read(0, file->size());
}

absl::StatusOr<uint64_t> FileSize(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Errno(errno, "stat", path);
  return uint64_t(st.st_size);
}

absl::Status RemoveFile(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Errno(errno, "unlink", path);
  }
  return absl::OkStatus();
}

absl::Status RenameFile(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return Errno(errno, "rename to " + to, from);
  }
  return absl::OkStatus();
}

// ---- AppendFile -------------------------------------------------------------

absl::StatusOr<AppendFile> AppendFile::Create(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno(errno, "open", path);
  return AppendFile(path, fd);
}

AppendFile::AppendFile(AppendFile&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(std::exchange(other.fd_, -1)),
      size_(other.size_) {}

AppendFile& AppendFile::operator=(AppendFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    size_ = other.size_;
  }
  return *this;
}

AppendFile::~AppendFile() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status AppendFile::Append(absl::string_view data) {
  if (fd_ < 0) return absl::FailedPreconditionError("file closed: " + path_);
  absl::Status status = WriteAll(fd_, data, path_);
  if (status.ok()) size_ += data.size();
  return status;
}

absl::Status AppendFile::Sync() {
  if (fd_ < 0) return absl::FailedPreconditionError("file closed: " + path_);
  if (::fsync(fd_) != 0) return Errno(errno, "fsync", path_);
  return absl::OkStatus();
}

absl::Status AppendFile::Close() {
  if (fd_ < 0) return absl::OkStatus();
  int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0) return Errno(errno, "close", path_);
  return absl::OkStatus();
}

// ---- ReadableFile -----------------------------------------------------------

absl::StatusOr<ReadableFile> ReadableFile::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno(errno, "open", path);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    absl::Status status = Errno(errno, "fstat", path);
    ::close(fd);
    return status;
  }
  return ReadableFile(path, fd, uint64_t(st.st_size));
}

ReadableFile::ReadableFile(ReadableFile&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(std::exchange(other.fd_, -1)),
      size_(other.size_) {}

ReadableFile& ReadableFile::operator=(ReadableFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    size_ = other.size_;
  }
  return *this;
}

ReadableFile::~ReadableFile() {
  if (fd_ >= 0) ::close(fd_);
}

absl::StatusOr<std::string> ReadableFile::Read(uint64_t offset,
                                               uint64_t length) const {
  if (offset > size_ || length > size_ - offset) {
    return absl::DataLossError(
        absl::StrCat(path_, ": ", length, " bytes at offset ", offset,
                     " run past the end (size ", size_, ")"));
  }
  std::string out(length, '\0');
  uint64_t done = 0;
  while (done < length) {
    ssize_t n =
        ::pread(fd_, out.data() + done, length - done, off_t(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno(errno, "pread", path_);
    }
    if (n == 0) {
      return absl::DataLossError(
          absl::StrCat(path_, ": short read at offset ", offset + done));
    }
    done += uint64_t(n);
  }
  return out;
}

// ---- Fixed-width coding
// -------------------------------------------------------

void PutFixed32(std::string* out, uint32_t value) {
  for (int i = 0; i < 4; ++i) out->push_back(char((value >> (8 * i)) & 0xff));
}

void PutFixed64(std::string* out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out->push_back(char((value >> (8 * i)) & 0xff));
}

uint32_t DecodeFixed32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | uint8_t(p[i]);
  return v;
}

uint64_t DecodeFixed64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | uint8_t(p[i]);
  return v;
}

}  // namespace cairn::recovery::internal
