#include "bench/internal/scratch_dir.h"

#include <stdlib.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/internal/cleanup.h"

namespace cairn::bench {

absl::StatusOr<std::unique_ptr<ScratchDir>> ScratchDir::Create(
    absl::string_view prefix, bool keep) {
  const char* tmpdir = std::getenv("TMPDIR");
  std::string templ =
      absl::StrCat((tmpdir != nullptr && *tmpdir != '\0') ? tmpdir : "/tmp",
                   "/", prefix, "XXXXXX");
  std::vector<char> buffer(templ.begin(), templ.end());
  buffer.push_back('\0');
  if (mkdtemp(buffer.data()) == nullptr) {
    return absl::InternalError(
        absl::StrCat("mkdtemp ", templ, ": ", std::strerror(errno)));
  }
  std::string path(buffer.data());
  if (!keep) RegisterScratchDir(path);
  return std::unique_ptr<ScratchDir>(new ScratchDir(path, keep));
}

ScratchDir::~ScratchDir() {
  if (keep_) return;
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
  UnregisterScratchDir(path_);
}

std::string ScratchDir::Sub(absl::string_view name) const {
  return absl::StrCat(path_, "/", name);
}

}  // namespace cairn::bench
