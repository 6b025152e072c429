// memory_hog: a task for memory-limit tests. Allocates and touches
// `argv[1]` MiB (default 256) one MiB at a time, printing its progress to
// stdout, then sleeps until killed. Under a memory cgroup smaller than that,
// the kernel's OOM killer ends it part-way.
//
//   memory_hog 256

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

int main(int argc, char** argv) {
  const long mib = argc > 1 ? std::strtol(argv[1], nullptr, 10) : 256;
  if (mib <= 0) {
    std::fprintf(stderr, "memory_hog: the MiB count must be positive\n");
    return 2;
  }
  constexpr size_t kStep = 1 << 20;
  std::vector<char*> blocks;
  for (long i = 0; i < mib; ++i) {
    char* block = static_cast<char*>(std::malloc(kStep));
    if (block == nullptr) {
      std::fprintf(stderr, "memory_hog: malloc failed after %ld MiB\n", i);
      return 1;
    }
    // Touch every page so that it is really resident.
    std::memset(block, static_cast<int>(i & 0x7f) | 1, kStep);
    blocks.push_back(block);
    if ((i + 1) % 16 == 0) {
      std::printf("memory_hog: %ld MiB\n", i + 1);
      std::fflush(stdout);
    }
  }
  std::printf("memory_hog: holding %ld MiB\n", mib);
  std::fflush(stdout);
  while (true) pause();
}
