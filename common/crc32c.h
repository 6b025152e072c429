// CRC-32C (Castagnoli): the checksum guarding every record Cairn writes to
// disk (see proto/cairn/v1/log.proto, `Record.crc32c`).
//
// Polynomial 0x1EDC6F41 (reflected 0x82F63B78), initial value and final XOR
// 0xFFFFFFFF, as in iSCSI (RFC 3720), ext4 and LevelDB. Software only:
// slicing-by-8 tables built at compile time, about 1 byte/cycle.
//
// Thread safety: pure functions over read-only tables; safe from any thread.

#ifndef CAIRN_COMMON_CRC32C_H_
#define CAIRN_COMMON_CRC32C_H_

#include <cstdint>

#include "absl/strings/string_view.h"

namespace cairn {

// Returns the CRC-32C of `data`. Crc32c("") == 0 and
// Crc32c("123456789") == 0xE3069283.
uint32_t Crc32c(absl::string_view data);

// Returns the CRC-32C of A + `data`, where `crc` is the CRC-32C of some
// string A: Crc32cExtend(Crc32c(a), b) == Crc32c(a + b), and
// Crc32cExtend(0, b) == Crc32c(b). For checksumming data that arrives in
// pieces.
uint32_t Crc32cExtend(uint32_t crc, absl::string_view data);

}  // namespace cairn

#endif  // CAIRN_COMMON_CRC32C_H_
