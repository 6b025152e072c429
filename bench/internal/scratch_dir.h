// ScratchDir: a fresh temporary directory for one benchmark run, removed
// (recursively) when the ScratchDir is destroyed, or by the cleanup registry
// if the run ends some other way (see cleanup.h).
//
// Thread safety: immutable after creation; path() may be read from any thread.

#ifndef CAIRN_BENCH_INTERNAL_SCRATCH_DIR_H_
#define CAIRN_BENCH_INTERNAL_SCRATCH_DIR_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cairn::bench {

class ScratchDir {
 public:
  // Creates `<parent>/<prefix>XXXXXX` (parent defaults to $TMPDIR or /tmp).
  // When `keep` is set the directory is left in place at the end (for
  // inspecting server logs). Returns kInternal if mkdtemp fails.
  static absl::StatusOr<std::unique_ptr<ScratchDir>> Create(
      absl::string_view prefix, bool keep = false);

  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  ~ScratchDir();

  const std::string& path() const { return path_; }
  // Returns path() + "/" + name.
  std::string Sub(absl::string_view name) const;

 private:
  ScratchDir(std::string path, bool keep)
      : path_(std::move(path)), keep_(keep) {}

  const std::string path_;
  const bool keep_;
};

}  // namespace cairn::bench

#endif  // CAIRN_BENCH_INTERNAL_SCRATCH_DIR_H_
